"""Engines, sessions and migrations: SQLite (WAL, foreign keys) or PostgreSQL through psycopg.

Everything here is blocking; async code runs it on the ``db_pool``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
"""Alembic script directory, shipped inside the package."""
BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for another writer's lock before failing."""


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; a bare ``postgresql://`` gets the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss too, not only a crash of the process (a spoken
        # promise confirmation relies on it; see research/reliability-compliance.md section 3).
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings the CRM relies on.

    SQLite: foreign keys on, WAL journal, ``synchronous=FULL``, a busy timeout, usable from
    the ``db_pool`` threads; the file's directory is created. PostgreSQL: psycopg 3,
    ``synchronous_commit=on`` whatever the server default, connections pinged before use.

    Args:
        url: SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``).
        **kwargs: Passed on to :func:`sqlalchemy.create_engine`.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {
            "check_same_thread": False,
            "timeout": BUSY_TIMEOUT_MS / 1000,
        }
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        pg_args: dict[str, Any] = {"options": "-c synchronous_commit=on"}
        pg_args.update(kwargs.pop("connect_args", {}))
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, connect_args=pg_args, **kwargs)
    return create_engine(parsed, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (they are handed across threads)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def write_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction takes the write lock first on SQLite; commits on exit."""
    with sessions() as s:
        if s.get_bind().dialect.name == "sqlite":
            s.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield s
        s.commit()


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    from voiceagent.crm.types import UtcDateTime

    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def migration_options(engine: Engine) -> dict[str, Any]:
    """Alembic ``context.configure`` options for migrations and autogenerate comparisons."""
    from voiceagent.crm.models import Base

    return {
        "target_metadata": Base.metadata,
        "render_as_batch": engine.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        "compare_type": True,
        "render_item": _render_item,
    }


def alembic_config(engine: Engine) -> Any:
    """An Alembic config for the packaged migrations, bound to ``engine`` (for ``command.*``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(url: str | URL | Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (no ``alembic.ini`` needed).

    Args:
        url: Database URL, or an engine made by :func:`make_engine`.
        revision: Target revision; ``head`` is the newest.
    """
    from alembic import command

    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        command.upgrade(alembic_config(engine), revision)
    finally:
        if engine is not url:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this package."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()
