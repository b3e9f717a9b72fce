"""Hostile and broken input: the fixtures of tests/evcore (a real central system on loopback).

Every test here reproduces, over a real websocket, something a broken or hostile charger (or
meter) did, and checks that it is refused, counted, logged once and harmless to the others.
"""

from tests.evcore.conftest import (
    _loopback_sockets,
    bad,
    central_system,
    connect_cp,
    connect_raw,
    good,
    start_central_system,
)

__all__ = [
    "_loopback_sockets",
    "bad",
    "central_system",
    "connect_cp",
    "connect_raw",
    "good",
    "start_central_system",
]
