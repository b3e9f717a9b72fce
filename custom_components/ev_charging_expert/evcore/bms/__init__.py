"""The BMS Modbus TCP slave: register map as data, stable slots, the server."""

from .registers import MAP_VERSION, POINTS
from .server import BmsServer, BmsSettings, BmsStatus
from .slots import MemorySlotStore, SlotStore

__all__ = [
    "MAP_VERSION",
    "POINTS",
    "BmsServer",
    "BmsSettings",
    "BmsStatus",
    "MemorySlotStore",
    "SlotStore",
]
