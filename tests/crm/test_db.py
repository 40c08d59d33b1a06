"""Engine settings, timestamp and money types, and the schema's constraints on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from tests.crm.conftest import make_account
from tests.pg import PgCluster
from voiceagent.crm.db import make_engine, normalize_url
from voiceagent.crm.models import Account, ContactRestriction, Phone, Promise
from voiceagent.crm.types import from_minor, to_minor


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'x.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("PRAGMA foreign_keys")) == 1
            assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert conn.scalar(text("PRAGMA synchronous")) == 2  # FULL
            assert conn.scalar(text("PRAGMA busy_timeout")) == 10_000
    finally:
        engine.dispose()


def test_postgres_url_gets_psycopg_and_synchronous_commit(postgres: PgCluster) -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    url = postgres.new_database().replace("postgresql+psycopg://", "postgresql://")
    engine = make_engine(url)
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as conn:
            assert conn.scalar(text("SHOW synchronous_commit")) == "on"
    finally:
        engine.dispose()


def test_money_minor_units() -> None:
    assert to_minor(Decimal("150000.50"), "COP") == 15_000_050
    assert to_minor(Decimal("25000"), "CLP") == 25_000
    assert from_minor(15_000_050, "COP") == Decimal("150000.50")
    with pytest.raises(ValueError, match="decimals"):
        to_minor(Decimal("1000.5"), "CLP")


def test_timestamps_are_aware_utc(
    sessions: sessionmaker[Session], account: tuple[int, int]
) -> None:
    bogota = timezone(timedelta(hours=-5))
    with sessions.begin() as s:
        phone = s.get(Phone, account[1])
        assert phone is not None
        phone.consent_at = datetime(2030, 1, 2, 9, 30, tzinfo=bogota)
    with sessions() as s:
        got = s.scalar(select(Phone.consent_at).where(Phone.id == account[1]))
        assert got == datetime(2030, 1, 2, 14, 30, tzinfo=UTC)
        assert got is not None and got.utcoffset() == timedelta(0)
        acc = s.get(Account, account[0])
        assert acc is not None and acc.created_at.tzinfo is not None
    with sessions.begin() as s, pytest.raises(StatementError, match="naive"):
        phone = s.get(Phone, account[1])
        assert phone is not None
        phone.consent_at = datetime(2030, 1, 2, 9, 30)
        s.flush()


def _fails(sessions: sessionmaker[Session], fn: Callable[[Session], object]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as s:
        fn(s)
        s.flush()


def test_constraints(sessions: sessionmaker[Session], account: tuple[int, int]) -> None:
    account_id, phone_id = account
    # foreign keys are enforced (SQLite too)
    _fails(sessions, lambda s: s.add(Phone(account_id=99_999, e164="+573001112233")))
    # one E.164 per account, and only E.164
    _fails(sessions, lambda s: s.add(Phone(account_id=account_id, e164="+573001234567")))
    _fails(sessions, lambda s: s.add(Phone(account_id=account_id, e164="3001234567")))
    _fails(sessions, lambda s: s.add(Phone(account_id=account_id, e164="+5730", type="sat")))

    def duplicate_ref(s: Session) -> None:
        acc = s.get(Account, account_id)
        assert acc is not None
        s.add(
            Account(
                portfolio_id=acc.portfolio_id,
                external_ref=acc.external_ref,
                debtor_name="X",
                amount_owed_minor=1,
                currency="COP",
                timezone="UTC",
                locale="es-419",
            )
        )

    _fails(sessions, duplicate_ref)

    def promise(**kw: Any) -> Promise:
        base = {"account_id": account_id, "amount_minor": 100, "currency": "COP"}
        return Promise(**{**base, "due_date": date(2030, 1, 1), **kw})

    _fails(sessions, lambda s: s.add(promise(amount_minor=0)))
    _fails(sessions, lambda s: s.add(promise(status="maybe")))
    # a phone-scoped restriction names its phone
    _fails(
        sessions,
        lambda s: s.add(ContactRestriction(account_id=account_id, kind="dispute", scope="phone")),
    )
    with sessions.begin() as s:
        s.add(promise())
        s.add(
            ContactRestriction(
                account_id=account_id, phone_id=phone_id, kind="wrong_number", scope="phone"
            )
        )


def test_amounts_are_exact_big_integers(sessions: sessionmaker[Session], engine: Engine) -> None:
    with sessions.begin() as s:
        acc, _ = make_account(s)
        acc.amount_owed_minor = 9_007_199_254_740_993  # 2**53 + 1: not a float
        account_id = acc.id
    with sessions() as s:
        again = s.get(Account, account_id)
        assert again is not None
        assert again.amount_owed_minor == 9_007_199_254_740_993
