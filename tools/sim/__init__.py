"""OCPP 1.6J charge point simulator: single chargers, fleets, and the charging-profile rules."""

from .charge_point import (
    CallFailedError,
    Connector,
    Ev,
    OfflineError,
    SessionRecord,
    SimulatedChargePoint,
    default_ev_factory,
)
from .clock import Napper, ScaledClock, SimClock, sleep
from .fleet import Fleet
from .profiles import ChargingProfile, Limit, ProfileError, ProfileStore, ReceivedProfile

__all__ = [
    "CallFailedError",
    "ChargingProfile",
    "Connector",
    "Ev",
    "Fleet",
    "Limit",
    "Napper",
    "OfflineError",
    "ProfileError",
    "ProfileStore",
    "ReceivedProfile",
    "ScaledClock",
    "SessionRecord",
    "SimClock",
    "SimulatedChargePoint",
    "default_ev_factory",
    "sleep",
]
