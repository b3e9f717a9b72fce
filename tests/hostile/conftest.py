"""Hostile-input tests reuse the evcore fixtures: a real central system on loopback, real peers."""

from tests.evcore.conftest import (
    _loopback_sockets,
    central_system,
    connect_cp,
    connect_raw,
    start_central_system,
)

__all__ = [
    "_loopback_sockets",
    "central_system",
    "connect_cp",
    "connect_raw",
    "start_central_system",
]
