"""Session store fixtures: SQLite in a temp dir, and a real PostgreSQL server on loopback.

The PostgreSQL server (Debian's `postgresql` binaries: `initdb`, `pg_ctl`) is started once per
test run in a temp directory on a free 127.0.0.1 port; each test gets a fresh database. When
the binaries are missing the PostgreSQL variants are skipped with the reason (`make test`
installs them). As root, the server runs as the `postgres` user (it refuses root).
"""

from __future__ import annotations

# ruff: noqa: S603  # the server binaries found above, with arguments of our own
import os
from pathlib import Path
import pwd
import shutil
import socket
import subprocess
import tempfile
from typing import TYPE_CHECKING
import uuid

import pytest
import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Iterator


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[sa.URL]:
    """A running PostgreSQL server: the URL of its maintenance database."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError:
        pytest.skip("psycopg is not installed (requirements.txt)")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="evce-pg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    port = _free_port()
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-U", "evce", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *prefix,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, OSError) as err:
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(err, "stderr", b"") or b""
        pytest.skip(f"PostgreSQL could not start: {err} {detail.decode(errors='replace')[:300]}")
    try:
        yield sa.URL.create(
            "postgresql+psycopg", username="evce", host="127.0.0.1", port=port, database="postgres"
        )
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def fresh_postgres_database(server: sa.URL) -> sa.URL:
    """A new empty database on the server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.set(database=name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> sa.URL:
    """An empty database: SQLite in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return sa.make_url(f"sqlite:///{tmp_path / 'sessions.db'}")
    server = request.getfixturevalue("postgres_server")
    return fresh_postgres_database(server)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> sa.URL:
    """An empty SQLite database in tmp_path."""
    return sa.make_url(f"sqlite:///{tmp_path / 'sessions.db'}")
