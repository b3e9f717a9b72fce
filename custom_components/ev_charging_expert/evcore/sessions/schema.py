"""The database schema of the session store, its version and forward migrations.

Version 1 was the first schema (kept here to test the migration from it). Each migration moves
the schema one version forward inside one transaction; the version lives in `evce_meta`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateColumn

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection, Engine

SCHEMA_VERSION = 2

metadata = sa.MetaData()

meta = sa.Table(
    "evce_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

sessions = sa.Table(
    "evce_sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("transaction_id", sa.Integer, nullable=False),
    sa.Column("station_id", sa.String(255), nullable=False),
    sa.Column("connector_id", sa.Integer, nullable=False),
    sa.Column("zone_id", sa.String(255)),
    sa.Column("id_tag", sa.String(64), nullable=False),
    sa.Column("card_comment", sa.String(255)),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("ended_by", sa.String(16)),
    sa.Column("stop_reason", sa.String(64)),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("start_received_at", sa.DateTime),
    sa.Column("stopped_at", sa.DateTime),
    sa.Column("stop_received_at", sa.DateTime),
    sa.Column("meter_start_wh", sa.Float, nullable=False),
    sa.Column("meter_stop_wh", sa.Float),
    sa.Column("energy_wh", sa.Float),
    sa.Column("plugged_s", sa.Float),
    sa.Column("charging_s", sa.Float),
    sa.Column("peak_power_w", sa.Float),
    sa.Column("tou_json", sa.Text),
    sa.Column("flags", sa.String(255)),
    sa.Column("state_json", sa.Text),
    sa.Column("updated_at", sa.DateTime),
    # Export and list by period (in their order: start, then id), by station, by card; the
    # open sessions at start; a replay.
    sa.Index("ix_evce_sessions_started_at", "started_at", "id"),
    sa.Index("ix_evce_sessions_station_started", "station_id", "started_at"),
    sa.Index("ix_evce_sessions_id_tag_started", "id_tag", "started_at"),
    sa.Index("ix_evce_sessions_station_tx", "station_id", "transaction_id"),
    sa.Index("ix_evce_sessions_status", "status"),
)

# Version 1: the first schema, without zone, card comment, reception times, charging time,
# peak power, TOU split, flags or working state.
V1_COLUMNS = (
    "id",
    "transaction_id",
    "station_id",
    "connector_id",
    "id_tag",
    "status",
    "stop_reason",
    "started_at",
    "stopped_at",
    "meter_start_wh",
    "meter_stop_wh",
    "energy_wh",
)


def _plain(column: sa.Column[Any]) -> sa.Column[Any]:
    return sa.Column(
        column.name, column.type, primary_key=column.primary_key, nullable=column.nullable
    )


def create_v1(engine: Engine) -> None:
    """Create the version-1 schema (tests of the migration use it)."""
    v1 = sa.MetaData()
    sa.Table("evce_meta", v1, *(_plain(c) for c in meta.columns))
    sa.Table(
        "evce_sessions",
        v1,
        *(_plain(sessions.c[name]) for name in V1_COLUMNS),
        sa.Index("ix_evce_sessions_started_at", "started_at"),
    )
    with engine.begin() as conn:
        v1.create_all(conn)
        conn.execute(sa.insert(v1.tables["evce_meta"]).values(key="schema_version", value="1"))


def _v1_to_v2(conn: Connection) -> None:
    existing = {c["name"] for c in sa.inspect(conn).get_columns("evce_sessions")}
    table = sessions.name
    preparer = conn.dialect.identifier_preparer
    for column in sessions.columns:
        if column.name in existing:
            continue
        ddl = CreateColumn(column).compile(dialect=conn.dialect)  # type: ignore[no-untyped-call]
        conn.execute(sa.text(f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {ddl}"))
    conn.execute(
        sa.update(sessions)
        .where(sessions.c.start_received_at.is_(None))
        .values(
            start_received_at=sessions.c.started_at,
            stop_received_at=sessions.c.stopped_at,
            charging_s=0.0,
            tou_json="{}",
            flags="",
        )
    )
    for index in sessions.indexes:
        index.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2}
"""From version N to N + 1."""


class SchemaTooNewError(Exception):
    """The database was written by a newer version of the integration."""


def ensure_schema(engine: Engine) -> int:
    """Create or migrate the schema; return the version found before (0: new database)."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table(meta.name):
            metadata.create_all(conn)
            conn.execute(sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            return 0
        found = int(
            conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar_one()
        )
    if found > SCHEMA_VERSION:
        msg = f"schema version {found} is newer than this version knows ({SCHEMA_VERSION})"
        raise SchemaTooNewError(msg)
    version = found
    while version < SCHEMA_VERSION:
        with engine.begin() as conn:
            MIGRATIONS[version](conn)
            version += 1
            conn.execute(
                sa.update(meta).where(meta.c.key == "schema_version").values(value=str(version))
            )
    return found
