"""The Alembic migrations build exactly the schema the models declare, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Index, MetaData, inspect

from voiceagent.crm.db import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migration_options,
    upgrade,
)
from voiceagent.crm.models import Base


def test_migration_matches_models(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            opts = migration_options(engine)
            context = MigrationContext.configure(conn, opts=opts)
            diff = compare_metadata(context, opts["target_metadata"])
        assert diff == []
        # The comparison is not blind: a schema with one index more than the database differs.
        changed = MetaData(naming_convention=Base.metadata.naming_convention)
        for table in Base.metadata.tables.values():
            table.to_metadata(changed)
        Index("ix_extra", changed.tables["phones"].c.consent)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={**opts, "target_metadata": changed})
            assert [d[0] for d in compare_metadata(context, changed)] == ["add_index"]
        assert current_revision(engine) == head_revision() == "0005"
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set(Base.metadata.tables)
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op_and_downgrade_removes_everything(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        command.downgrade(alembic_config(engine), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert current_revision(engine) is None
    finally:
        engine.dispose()
