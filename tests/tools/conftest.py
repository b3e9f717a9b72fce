"""Fixtures for the simulators' tests (tools/)."""

from __future__ import annotations

import contextlib

import pytest


@pytest.fixture(autouse=True)
def _loopback_sockets(request: pytest.FixtureRequest) -> None:
    """The HA test plugin blocks socket creation (pytest-socket); allow it, loopback only."""
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("socket_enabled")
