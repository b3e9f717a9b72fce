"""Charge data records: every session kept (SQLAlchemy; SQLite by default, PostgreSQL).

`SessionStore` does the I/O (one writer thread, reads in an executor), `SessionRecorder` turns
the Controller's events into records, `export.write_csv` streams them to CSV, and `tou` holds
the time-of-use protocol the records are split by.
"""

from .export import StationInfo, write_csv
from .record import EndedBy, Flag, SessionRecord, SessionStatus
from .recorder import RECORDER_EVENTS, SessionRecorder
from .store import (
    SessionFilter,
    SessionQueryError,
    SessionStore,
    SessionStoreError,
    StoreUnavailableError,
    database_url,
)
from .tou import NO_PERIOD, NO_TOU, NoTou, TouCalendar, split_energy

__all__ = [
    "NO_PERIOD",
    "NO_TOU",
    "RECORDER_EVENTS",
    "EndedBy",
    "Flag",
    "NoTou",
    "SessionFilter",
    "SessionQueryError",
    "SessionRecord",
    "SessionRecorder",
    "SessionStatus",
    "SessionStore",
    "SessionStoreError",
    "StationInfo",
    "StoreUnavailableError",
    "TouCalendar",
    "database_url",
    "split_energy",
    "write_csv",
]
