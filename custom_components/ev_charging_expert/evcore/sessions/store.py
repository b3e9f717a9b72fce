"""The session store: SQLAlchemy (SQLite by default, PostgreSQL, any URL), off the event loop.

Writes go through one writer thread that batches them (one commit per batch, repeated updates
of a session coalesced). When the database cannot be reached the writes are kept in a bounded
buffer, saved to a JSON file beside the SQLite file, and written when it answers again; the
store says so through `on_state` (HA turns it into a repair). Reads run in the injected executor.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
import importlib.util
import json
import logging
from pathlib import Path
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ..errors import EvcoreError
from .export import EXPORT_COLUMNS
from .record import Flag, SessionRecord, SessionStatus, naive
from .schema import ensure_schema, sessions

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    import os

    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.sql.elements import ColumnElement

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_BUFFER = 20_000
"""Sessions kept while the database is unreachable (then the oldest updates go)."""
BATCH_SIZE = 500
RETRY_S = 30.0
LINGER_S = 0.2
"""How long the writer waits for more writes after the first of a batch (s)."""
# Looked up once, at import (HA imports integrations off the event loop).
_HAS_PSYCOPG = importlib.util.find_spec("psycopg") is not None
_DATETIME_COLUMNS = frozenset(c.name for c in sessions.columns if isinstance(c.type, sa.DateTime))


class SessionStoreError(EvcoreError):
    """The session store cannot do what was asked (database unreachable, bad query)."""


class SessionQueryError(SessionStoreError):
    """A query or export whose parameters do not make sense; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StoreUnavailableError(SessionStoreError):
    """The database cannot be reached right now (the writes are buffered meanwhile)."""


def database_url(url: str | None, config_dir: str | os.PathLike[str]) -> sa.URL:
    """The URL to use: SQLite in the config folder by default; PostgreSQL through psycopg 3.

    Raises SessionQueryError("db_url", ...) for a URL SQLAlchemy cannot parse.
    """
    if not url:
        return sa.make_url(f"sqlite:///{Path(config_dir) / 'ev_charging_expert_sessions.db'}")
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as err:
        raise SessionQueryError("db_url", f"not a database URL ({err})") from None
    if parsed.drivername == "postgresql" and _HAS_PSYCOPG:
        # psycopg 3 when installed; else SQLAlchemy's default (psycopg2, in HA's images).
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Which sessions: those started in [start, end), and the equalities given."""

    start: datetime | None = None
    end: datetime | None = None
    station_id: str | None = None
    connector_id: int | None = None
    id_tag: str | None = None
    zone_id: str | None = None
    status: SessionStatus | None = None

    def check(self) -> None:
        """Raise SessionQueryError for a period that ends before it starts."""
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise SessionQueryError(name, "a time zone is required")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise SessionQueryError("end", "the period ends before it starts")

    def where(self) -> list[ColumnElement[bool]]:
        """The SQL conditions."""
        self.check()
        c = sessions.c
        conditions: list[ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(c.started_at >= naive(self.start))
        if self.end is not None:
            conditions.append(c.started_at < naive(self.end))
        conditions.extend(
            c[name] == value
            for name in ("station_id", "connector_id", "id_tag", "zone_id")
            if (value := getattr(self, name)) is not None
        )
        if self.status is not None:
            conditions.append(c.status == self.status.value)
        return conditions


@dataclass(slots=True)
class _Flush:
    future: Future[bool] = field(default_factory=Future)


@dataclass(slots=True)
class _Purge:
    before: datetime


_STOP = object()

type Executor = Callable[[Callable[[], Any]], Awaitable[Any]]


async def _default_executor(func: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(func)


class SessionStore:
    """Charge data records in a SQL database."""

    def __init__(
        self,
        url: sa.URL | str,
        *,
        buffer_path: str | os.PathLike[str] | None = None,
        executor: Executor | None = None,
        on_state: Callable[[bool, str | None], None] | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        retry_s: float = RETRY_S,
        linger: float = LINGER_S,
    ) -> None:
        self.url = sa.make_url(url) if isinstance(url, str) else url
        self.engine: Engine = _engine(self.url)
        self._executor = executor or _default_executor
        self._on_state = on_state
        self._buffer_path = Path(buffer_path) if buffer_path else None
        self._max_buffer = max_buffer
        self._retry_s = retry_s
        self._linger = linger
        self._queue: queue.Queue[Any] = queue.Queue()
        self._buffer: dict[str, dict[str, Any]] = {}
        self._orphans: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        self.available = False
        self.error: str | None = None
        self.dropped = 0
        """Buffered session updates dropped because the buffer was full."""
        self.schema_found: int | None = None
        """The schema version found when the database was opened (0: new)."""
        self._buffer_loaded = False

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> bool:
        """Create or migrate the schema (blocking); False when the database cannot be reached.

        The first call also reads what an earlier run left in the buffer file.
        """
        if not self._buffer_loaded:
            self._buffer_loaded = True
            self._load_buffer()
        try:
            if self.url.get_backend_name() == "sqlite" and self.url.database:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.schema_found = ensure_schema(self.engine)
        except (sa.exc.SQLAlchemyError, OSError) as err:
            self._set_state(available=False, error=_describe(err))
            return False
        self._set_state(available=True, error=None)
        if self._buffer or self._orphans:
            # What waited for the database goes in first: reads (open sessions to resume
            # after a restart) must see it.
            self._write([])
        return self.available

    def start(self) -> None:
        """Start the writer thread (it opens the database when `open` was not called)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="ev_charging_expert sessions", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Write what is queued, stop the writer thread, close the pool (blocking)."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self.engine.dispose()

    async def async_close(self) -> None:
        """`close` off the event loop."""
        await self._executor(self.close)

    # ------------------------------------------------------------------ writes, from any thread
    def put(self, record: SessionRecord) -> None:
        """Insert or replace a record (a copy is taken now)."""
        self._queue.put(record.to_row())

    def put_orphan(self, record: SessionRecord) -> None:
        """The end of an unknown session: recorded unless that session is closed already."""
        self._queue.put(("orphan", record.to_row()))

    def purge_before(self, before: datetime) -> None:
        """Delete the ended sessions started before `before` (retention)."""
        self._queue.put(_Purge(before))

    async def flush(self) -> bool:
        """Wait until everything put so far is written; False when it stays buffered."""
        op = _Flush()
        self._queue.put(op)
        if self._thread is None:
            return False
        return await asyncio.wrap_future(op.future)

    @property
    def buffered(self) -> int:
        """Session writes waiting for the database."""
        return len(self._buffer) + len(self._orphans)

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        if not self.available:
            self.open()
        while True:
            waiting = bool(self._buffer or self._orphans) or not self.available
            try:
                first = self._queue.get(timeout=self._retry_s if waiting else None)
            except queue.Empty:
                first = None
            batch = [] if first is None else [first]
            if first is not None and not isinstance(first, _Flush) and self._linger > 0:
                # Let a batch gather: one commit for many sessions, and far fewer wake-ups
                # of this thread competing with the event loop for the interpreter.
                time.sleep(self._linger)
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(op is _STOP for op in batch)
            self._process([op for op in batch if op is not _STOP])
            if stop:
                return

    def _process(self, batch: list[Any]) -> None:
        flushes: list[_Flush] = []
        purges: list[_Purge] = []
        for op in batch:
            if isinstance(op, _Flush):
                flushes.append(op)
            elif isinstance(op, _Purge):
                purges.append(op)
            elif isinstance(op, tuple):
                self._orphans.append(op[1])
            else:
                self._buffer.pop(op["id"], None)  # the latest state goes last
                self._buffer[op["id"]] = op
        self._trim()
        written = (not self._buffer and not self._orphans and not purges) or self._write(purges)
        for flush in flushes:
            flush.future.set_result(written)

    def _write(self, purges: list[_Purge]) -> bool:
        if not self.available and not self.open():
            self._save_buffer()
            return False
        try:
            with self.engine.begin() as conn:
                if self._buffer:
                    _upsert(conn, list(self._buffer.values()))
                for orphan in self._orphans:
                    _record_orphan(conn, orphan)
                for purge in purges:
                    conn.execute(
                        sa.delete(sessions).where(
                            sessions.c.started_at < naive(purge.before),
                            sessions.c.status != SessionStatus.OPEN.value,
                        )
                    )
        except (sa.exc.SQLAlchemyError, OSError) as err:
            _LOGGER.warning("Session store: write failed, kept for later: %s", _describe(err))
            self._set_state(available=False, error=_describe(err))
            self._save_buffer()
            return False
        had_buffer = self._buffer_path is not None and self._buffer_path.exists()
        self._buffer.clear()
        self._orphans.clear()
        if had_buffer:
            self._save_buffer()
        return True

    def _trim(self) -> None:
        excess = len(self._buffer) - self._max_buffer
        if excess <= 0:
            return
        for key in list(self._buffer)[:excess]:
            del self._buffer[key]
        self.dropped += excess
        _LOGGER.error(
            "Session store: %d session updates dropped, the database has been unreachable for "
            "too long (%d kept)",
            excess,
            self._max_buffer,
        )

    def _set_state(self, *, available: bool, error: str | None) -> None:
        changed = (available, error) != (self.available, self.error)
        self.available, self.error = available, error
        if changed:
            if available:
                _LOGGER.info("Session store: database reachable (%s)", _safe_url(self.url))
            else:
                _LOGGER.error(
                    "Session store: database %s unreachable (%s); sessions are kept in a "
                    "buffer until it answers",
                    _safe_url(self.url),
                    error,
                )
            if self._on_state is not None:
                self._on_state(available, error)

    # ------------------------------------------------------------------ the buffer file
    def _save_buffer(self) -> None:
        path = self._buffer_path
        if path is None:
            return
        if not self._buffer and not self._orphans:
            path.unlink(missing_ok=True)
            return
        data = {
            "sessions": [_jsonable_row(r) for r in self._buffer.values()],
            "orphans": [_jsonable_row(r) for r in self._orphans],
        }
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(path)
        except OSError as err:
            _LOGGER.error("Session store: cannot save the buffer to %s: %s", path, err)  # noqa: TRY400  # the path says it all

    def _load_buffer(self) -> None:
        path = self._buffer_path
        if path is None or not path.exists():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            for row in data.get("sessions", []):
                parsed = _row_from_json(row)
                # Newer writes (queued since) replace what the file held, never the reverse.
                self._buffer.setdefault(parsed["id"], parsed)
            self._orphans.extend(_row_from_json(r) for r in data.get("orphans", []))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            kept = path.with_suffix(".unreadable")
            _LOGGER.error("Session store: unreadable buffer %s kept as %s: %s", path, kept, err)  # noqa: TRY400
            path.replace(kept)

    # ------------------------------------------------------------------ blocking reads
    def _require(self) -> None:
        if not self.available:
            raise StoreUnavailableError(self.error or "the database is not open")

    def list_page(
        self, query: SessionFilter, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[SessionRecord], bool]:
        """One page of sessions, newest first; and whether more follow."""
        self._require()
        stmt = (
            sa.select(sessions)
            .where(*query.where())
            .order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        records = [SessionRecord.from_row(r) for r in rows[:limit]]
        return records, len(rows) > limit

    def iter_records(self, query: SessionFilter, *, chunk: int = 5000) -> Iterator[SessionRecord]:
        """Every matching record, oldest first, streamed (constant memory)."""
        self._require()
        stmt = (
            sa.select(sessions)
            .where(*query.where())
            .order_by(sessions.c.started_at, sessions.c.id)
            .execution_options(yield_per=chunk)
        )
        with self.engine.connect() as conn:
            for row in conn.execute(stmt):
                yield SessionRecord.from_row(row)

    def iter_export(self, query: SessionFilter, *, chunk: int = 10_000) -> Iterator[Any]:
        """The raw rows an export writes (`export.EXPORT_COLUMNS`), oldest first, streamed.

        Times come as the driver gives them (SQLite: text), for `export.write_csv`.
        """
        self._require()
        columns = [
            sa.type_coerce(sessions.c[name], sa.String)
            if isinstance(sessions.c[name].type, sa.DateTime)
            else sessions.c[name]
            for name in EXPORT_COLUMNS
        ]
        stmt = (
            sa.select(*columns)
            .where(*query.where())
            .order_by(sessions.c.started_at, sessions.c.id)
            .execution_options(yield_per=chunk)
        )
        with self.engine.connect() as conn:
            yield from conn.execute(stmt)

    def checkpoint(self) -> None:
        """SQLite: move the write-ahead log into the database file (before a file backup)."""
        if self.available and self.url.get_backend_name() == "sqlite":
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def open_records(self) -> list[SessionRecord]:
        """The sessions still open (to resume them after a restart)."""
        self._require()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(sessions).where(sessions.c.status == SessionStatus.OPEN.value)
            ).all()
        return [SessionRecord.from_row(r) for r in rows]

    def max_transaction_id(self) -> int:
        """The highest transaction id the site handed out (0: none).

        Orphans do not count: their ids are whatever a charger sent (2^31 - 1 would leave
        the site no id a charger's int32 can hold).
        """
        self._require()
        stmt = sa.select(sa.func.max(sessions.c.transaction_id)).where(
            sessions.c.status != SessionStatus.ORPHAN.value
        )
        with self.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return int(value or 0)

    def energy_since(self, since: datetime) -> dict[tuple[str, int], float]:
        """Energy of the sessions ended since `since`, per (station, connector)."""
        self._require()
        c = sessions.c
        stmt = (
            sa.select(c.station_id, c.connector_id, sa.func.sum(c.energy_wh))
            .where(c.stopped_at >= naive(since), c.status != SessionStatus.OPEN.value)
            .group_by(c.station_id, c.connector_id)
        )
        with self.engine.connect() as conn:
            return {(s, int(k)): float(e or 0.0) for s, k, e in conn.execute(stmt)}

    def last_closed(self) -> dict[tuple[str, int], SessionRecord]:
        """The last ended session of every connector (sensors after a restart)."""
        self._require()
        c = sessions.c
        latest = (
            sa.select(c.station_id, c.connector_id, sa.func.max(c.stopped_at).label("at"))
            .where(c.status == SessionStatus.CLOSED.value)
            .group_by(c.station_id, c.connector_id)
            .subquery()
        )
        stmt = sa.select(sessions).join(
            latest,
            sa.and_(
                c.station_id == latest.c.station_id,
                c.connector_id == latest.c.connector_id,
                c.stopped_at == latest.c.at,
            ),
        )
        with self.engine.connect() as conn:
            records = [SessionRecord.from_row(r) for r in conn.execute(stmt)]
        return {(r.station_id, r.connector_id): r for r in records}

    def get(self, session_id: str) -> SessionRecord | None:
        """One record by our session id."""
        self._require()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.id == session_id)).first()
        return None if row is None else SessionRecord.from_row(row)

    def count(self, query: SessionFilter | None = None) -> int:
        """How many sessions match."""
        self._require()
        stmt = sa.select(sa.func.count()).select_from(sessions)
        if query is not None:
            stmt = stmt.where(*query.where())
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    # ------------------------------------------------------------------ async reads
    async def async_list_page(
        self, query: SessionFilter, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[SessionRecord], bool]:
        """`list_page` off the event loop, after the queued writes."""
        query.check()
        await self.flush()
        return await self._executor(lambda: self.list_page(query, offset=offset, limit=limit))  # type: ignore[no-any-return]

    async def run(self, func: Callable[[], Any]) -> Any:
        """Run a blocking read in the executor."""
        return await self._executor(func)


def _engine(url: sa.URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa_event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL: readers (export, list) never block the writer, nor the writer them.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, connect_args=_connect_args(url))


def _connect_args(url: sa.URL) -> dict[str, Any]:
    if url.get_backend_name() == "postgresql":
        return {"connect_timeout": 10}
    if url.get_backend_name() in ("mysql", "mariadb"):
        return {"connect_timeout": 10}
    return {}


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = conn.dialect.name
    updated = [c.name for c in sessions.columns if c.name != "id"]
    if dialect in ("sqlite", "postgresql"):
        module = sqlite if dialect == "sqlite" else postgresql
        stmt = module.insert(sessions)
        stmt = stmt.on_conflict_do_update(
            index_elements=[sessions.c.id], set_={n: stmt.excluded[n] for n in updated}
        )
        conn.execute(stmt, rows)
    elif dialect in ("mysql", "mariadb"):
        mstmt = mysql.insert(sessions)
        mstmt = mstmt.on_duplicate_key_update({n: mstmt.inserted[n] for n in updated})
        conn.execute(mstmt, rows)
    else:
        for row in rows:
            result = conn.execute(sa.update(sessions).where(sessions.c.id == row["id"]).values(row))
            if result.rowcount == 0:
                conn.execute(sa.insert(sessions).values(row))


def _record_orphan(conn: Connection, row: dict[str, Any]) -> None:
    """A StopTransaction for an id the site does not know: replay of a closed one, or new."""
    c = sessions.c
    known = conn.execute(
        sa.select(c.id, c.status, c.meter_start_wh)
        .where(c.station_id == row["station_id"], c.transaction_id == row["transaction_id"])
        .order_by(c.started_at.desc())
        .limit(1)
    ).first()
    if known is None:
        _upsert(conn, [row])
    elif known.status == SessionStatus.OPEN.value:
        # Open here, unknown to the site (its registry was older than this store): close it.
        keep = ("status", "ended_by", "stop_reason", "stopped_at", "stop_received_at")
        values = {k: row[k] for k in (*keep, "meter_stop_wh", "updated_at")}
        values["status"] = SessionStatus.CLOSED.value
        energy = row["meter_stop_wh"] - known.meter_start_wh if row["meter_stop_wh"] else None
        values["energy_wh"] = energy if energy is not None and energy >= 0 else None
        values["flags"] = Flag.CLOSED_AFTER_RESTART.value
        values["state_json"] = None
        conn.execute(sa.update(sessions).where(c.id == known.id).values(values))
    else:
        _LOGGER.debug("Session store: replayed end of %s ignored", known.id)


def _jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def _row_from_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: datetime.fromisoformat(v) if k in _DATETIME_COLUMNS and v is not None else v
        for k, v in row.items()
    }


def _describe(err: BaseException) -> str:
    orig = getattr(err, "orig", None)
    text = str(orig if orig is not None else err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _safe_url(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)
