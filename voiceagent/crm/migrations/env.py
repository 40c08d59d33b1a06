"""Alembic environment: the engine comes from ``voiceagent.crm.db`` (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from voiceagent.crm.db import make_engine, migration_options


def run_migrations_online() -> None:
    """Run migrations on the engine the caller put in ``config.attributes``."""
    engine: Engine | None = context.config.attributes.get("engine")
    owned = engine is None
    if engine is None:
        engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **migration_options(engine))
            with context.begin_transaction():
                context.run_migrations()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
run_migrations_online()
