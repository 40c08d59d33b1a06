"""A throwaway PostgreSQL cluster for tests, shared by the CRM, dialer and API test packages.

Usage in a ``conftest.py``::

    from tests.pg import postgres  # noqa: F401  (session-scoped fixture)

    def test_x(postgres: PgCluster) -> None:
        url = postgres.new_database()

The cluster runs from a temp directory with ``--auth=trust``, listens on 127.0.0.1 only (plus a
unix socket inside the temp directory), has ``fsync`` off for speed, and is stopped and deleted
at the end of the session. When run as root, PostgreSQL refuses to start, so the cluster runs as
the ``postgres`` system user. ``VOICEAGENT_TEST_PG_URL`` (e.g. a CI service container, as
``postgresql+psycopg://user:pass@host:5432/postgres``) replaces the local cluster.

A missing PostgreSQL skips locally and fails under ``VOICEAGENT_REQUIRE_MODELS=1``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.model_gate import need

ENV_URL = "VOICEAGENT_TEST_PG_URL"
START_TIMEOUT_S = 30


def find_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live (PATH first, then Debian's versioned dirs)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def require_bindir() -> Path | None:
    """The server binaries; without them skip locally, fail under VOICEAGENT_REQUIRE_MODELS=1."""
    bindir = find_bindir()
    need(bindir, "PostgreSQL server binaries (initdb, pg_ctl)")
    return bindir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as(user: str | None) -> dict[str, Any]:
    if user is None:
        return {}
    entry = pwd.getpwnam(user)

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return {"preexec_fn": demote, "env": {**os.environ, "HOME": entry.pw_dir}}


class PgCluster:
    """A running PostgreSQL server and a way to make empty databases on it."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        """``postgresql+psycopg://`` URL of the ``postgres`` maintenance database."""
        self._version: int | None = None

    def admin(self, sql: str) -> Any:
        """Run one statement on the maintenance database; return its first value, if any."""
        import psycopg

        conninfo = self.admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(sql.encode())
            row = cursor.fetchone() if cursor.description else None
            return row[0] if row else None

    @property
    def version(self) -> int:
        """``server_version_num`` (150000 for 15.0)."""
        if self._version is None:
            self._version = int(self.admin("SHOW server_version_num"))
        return self._version

    def new_database(self, template: str | None = None) -> str:
        """Create an empty database (or a copy of ``template``) and return its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        source = f'"{template}"' if template else "template0"
        if template and self.version >= 150000:
            source += " STRATEGY FILE_COPY"  # with fsync off, faster than logging every page
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE {source}')
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`new_database` (closing its connections)."""
        name = url.rsplit("/", 1)[1].split("?")[0]
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url_for(self, name: str) -> str:
        """The URL of database ``name`` on this server."""
        return self.admin_url.rsplit("/", 1)[0] + "/" + name


@contextlib.contextmanager
def local_cluster() -> Iterator[PgCluster]:
    """Start a fresh cluster in a temp directory; stop and delete it on exit."""
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL (initdb, pg_ctl) is not installed")
    user = "postgres" if os.geteuid() == 0 else None
    workdir = Path(tempfile.mkdtemp(prefix="voiceagent-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    data = workdir / "data"
    as_user = _run_as(user)
    started = False
    try:
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
            + ["-E", "UTF8", "--no-sync", "--locale=C"],
            check=True,
            capture_output=True,
            timeout=120,
            **as_user,
        )
        for _ in range(5):
            port = _free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -F "
                "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB"
            )
            result = subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(workdir / "log"), "-w"]
                + ["-t", str(START_TIMEOUT_S), "-o", opts, "start"],
                capture_output=True,
                timeout=START_TIMEOUT_S + 10,
                **as_user,
            )
            if result.returncode == 0:
                started = True
                break
        if not started:
            log_file = workdir / "log"
            log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {log}")
        yield PgCluster(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
    finally:
        if started:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                **as_user,
            )
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgCluster]:
    """A PostgreSQL server for the whole test session (skips, or fails in CI, without one)."""
    external = os.environ.get(ENV_URL)
    if external:
        yield PgCluster(external)
        return
    require_bindir()
    with local_cluster() as cluster:
        yield cluster
