"""CRM fixtures: every test runs on SQLite and on a real PostgreSQL (tests/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.pg import PgCluster, postgres  # noqa: F401  (the session-scoped fixture)
from voiceagent.crm import repo
from voiceagent.crm.db import make_engine, session_factory, upgrade
from voiceagent.crm.models import Account, Phone

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_template(postgres: PgCluster) -> str:  # noqa: F811
    """A migrated database that each PostgreSQL test copies (faster than migrating again)."""
    url = postgres.new_database()
    upgrade(url)
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: every CRM test runs on both."""
    return str(request.param)


def _pg_database(request: pytest.FixtureRequest, template: str | None) -> Iterator[str]:
    cluster: PgCluster = request.getfixturevalue("postgres")
    url = cluster.new_database(template)
    yield url
    cluster.drop_database(url)


@pytest.fixture
def db_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of an empty database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('crm') / 'crm.sqlite3'}"
    else:
        yield from _pg_database(request, None)


@pytest.fixture
def migrated_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a database migrated to head."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('crm') / 'crm.sqlite3'}"
        upgrade(url)
        yield url
    else:
        yield from _pg_database(request, request.getfixturevalue("pg_template"))


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    eng = make_engine(migrated_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def account(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """An account in COP, America/Bogota, with one mobile phone; returns (account_id, phone_id)."""
    with sessions.begin() as s:
        acc, phone = make_account(s)
        return acc.id, phone.id


def make_account(
    s: Session, ref: str = "A-1", e164: str = "+573001234567", document: str | None = "1020304050"
) -> tuple[Account, Phone]:
    folio = repo.portfolio(s, "Banco Andino", "Tarjetas 2024")
    acc, _ = repo.upsert_account(
        s,
        folio.id,
        repo.AccountRow(
            external_ref=ref,
            debtor_name="María Fernanda López",
            amount_owed_minor=45_000_000,
            currency="COP",
            timezone="America/Bogota",
            locale="es-419",
            days_past_due=35,
            document_type="CC",
            document_number=document,
        ),
    )
    return acc, repo.add_phone(s, acc.id, e164, consent=True, consent_source="contract")
