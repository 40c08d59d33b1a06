"""The queries the importer, dialer and API build on."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.crm.conftest import make_account
from voiceagent.crm import repo
from voiceagent.crm.models import Account, Attempt, ContactRestriction, Phone, Promise
from voiceagent.crm.types import utcnow

ROW = repo.AccountRow(
    external_ref="CR-7",
    debtor_name="Juan Pérez",
    amount_owed_minor=120_000_00,
    currency="COP",
    timezone="America/Bogota",
    locale="es-419",
    document_type="CC",
    document_number="79555111",
    extra={"product": "Tarjeta Oro"},
)


def test_reupload_updates_instead_of_duplicating(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        folio = repo.portfolio(s, "Banco Andino", "Tarjetas")
        assert repo.portfolio(s, "Banco Andino", "Tarjetas").id == folio.id
        first, created = repo.upsert_account(s, folio.id, ROW)
        assert created
        again, created = repo.upsert_account(s, folio.id, replace(ROW, days_past_due=40))
        assert not created and again.id == first.id and again.days_past_due == 40
        # a new reference with the same document is the same debtor
        by_doc, created = repo.upsert_account(s, folio.id, replace(ROW, external_ref="CR-7b"))
        assert not created and by_doc.id == first.id and by_doc.external_ref == "CR-7"
        # the same reference in another portfolio is another account
        other = repo.portfolio(s, "Banco Andino", "Créditos")
        _, created = repo.upsert_account(s, other.id, ROW)
        assert created
        assert s.scalar(select(func.count()).select_from(Account)) == 2


def test_phones_and_inbound_caller_lookup(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        acc, phone = make_account(s)
        assert phone.type == "mobile" and phone.consent and phone.consent_at is not None
        assert repo.add_phone(s, acc.id, "+573001234567").id == phone.id
        fixed = repo.add_phone(s, acc.id, "+576017654321")
        assert fixed.type == "fixed" and not fixed.consent
        assert s.scalar(select(func.count()).select_from(Phone)) == 2
        account_id = acc.id
    with sessions() as s:
        found = repo.account_by_phone(s, "+573001234567")
        assert found is not None and found.id == account_id
        national = repo.account_by_phone(s, "300 123 4567", region="CO")
        assert national is not None and national.id == account_id
        assert repo.account_by_phone(s, "+573009999999") is None
        assert repo.account_by_phone(s, "anonymous") is None
    assert repo.normalize_phone("(601) 765-4321", "CO") == "+576017654321"
    assert repo.normalize_phone("5551234&SIP/itsp/14165551212", "US") is None


def test_restrictions_by_scope(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        acc, phone = make_account(s)
        other = repo.add_phone(s, acc.id, "+573015550000")
        assert repo.may_contact(s, acc.id, phone.id)
        s.add(
            ContactRestriction(
                account_id=acc.id, phone_id=phone.id, kind="wrong_number", scope="phone"
            )
        )
        s.flush()
        assert not repo.may_contact(s, acc.id, phone.id)
        assert repo.may_contact(s, acc.id, other.id)
        stop = ContactRestriction(account_id=acc.id, kind="stop_contact", scope="account")
        s.add(stop)
        s.flush()
        assert not repo.may_contact(s, acc.id, other.id)
        assert [r.kind for r in repo.restrictions(s, acc.id)] == ["stop_contact"]
        stop.lifted_at = utcnow()
        s.flush()
        assert repo.may_contact(s, acc.id, other.id)


def _promise(s: Session, account_id: int, amount: int, due: date) -> Promise:
    p = Promise(account_id=account_id, amount_minor=amount, currency="COP", due_date=due)
    s.add(p)
    s.flush()
    return p


def test_payments_keep_promises(sessions: sessionmaker[Session]) -> None:
    today = utcnow().date()
    with sessions.begin() as s:
        acc, _ = make_account(s)
        first = _promise(s, acc.id, 100_000_00, today + timedelta(days=5))
        second = _promise(s, acc.id, 100_000_00, today + timedelta(days=35))
        assert repo.active_promise(s, acc.id) is first
        payment, kept = repo.record_payment(s, acc.id, 60_000_00, "COP", today, "TX-1")
        assert kept == [] and first.paid_minor == 60_000_00
        _, kept = repo.record_payment(s, acc.id, 60_000_00, "COP", today, "TX-2")
        assert kept == [first] and first.status == "kept"
        assert second.paid_minor == 20_000_00 and second.status == "pending"
        # the creditor re-sends a payment: nothing changes
        again, kept = repo.record_payment(s, acc.id, 60_000_00, "COP", today, "TX-2")
        assert kept == [] and second.paid_minor == 20_000_00
        assert acc.amount_owed_minor == 450_000_00 - 120_000_00
        assert repo.active_promise(s, acc.id) is second
        assert [p.id for p in repo.list_promises(s, acc.id, status="kept")] == [first.id]


def test_unpaid_promises_break_after_due_date(sessions: sessionmaker[Session]) -> None:
    today = date(2030, 3, 10)
    with sessions.begin() as s:
        acc, _ = make_account(s)
        overdue = _promise(s, acc.id, 1000, date(2030, 3, 8))
        due_today = _promise(s, acc.id, 1000, date(2030, 3, 10))
        assert repo.mark_broken_promises(s, today, grace_days=2) == []
        assert repo.mark_broken_promises(s, today) == [overdue]
        assert overdue.status == "broken" and overdue.resolved_at is not None
        assert due_today.status == "pending"
        assert repo.list_promises(s, due_before=today, status="broken") == [overdue]


def test_count_attempts(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    with sessions.begin() as s:
        acc, phone = make_account(s)
        other = repo.add_phone(s, acc.id, "+573015550000")
        for days, ph in ((1, phone), (3, other), (9, phone)):
            s.add(Attempt(account_id=acc.id, phone_id=ph.id, started_at=now - timedelta(days=days)))
        s.flush()
        week = now - timedelta(days=7)
        assert repo.count_attempts(s, acc.id, week) == 2
        assert repo.count_attempts(s, acc.id, week, phone_id=phone.id) == 1
