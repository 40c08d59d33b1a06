"""Reservation: order, skips, the one-call-per-account guard, caps, connect-time re-check."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tests.dialer.fixtures_dialer import WED_10_BOGOTA, seed, started
from voiceagent.crm import repo
from voiceagent.crm.models import (
    Account,
    ActiveDial,
    Attempt,
    Call,
    Callback,
    CallListRow,
    CampaignEntry,
    ContactRestriction,
    Phone,
    Promise,
)
from voiceagent.crm.types import utcnow
from voiceagent.dialer import queue, results
from voiceagent.dialer.ledger import same_person, subject
from voiceagent.dialer.queue import Outcome

BOGOTA = ZoneInfo("America/Bogota")
W = "test:1"


def _account_ids(sessions: sessionmaker[Session], campaign_id: int) -> list[int]:
    with sessions() as s:
        query = select(CampaignEntry.account_id).where(CampaignEntry.campaign_id == campaign_id)
        return list(s.scalars(query.order_by(CampaignEntry.account_id)))


def _entry(sessions: sessionmaker[Session], campaign_id: int, account_id: int) -> CampaignEntry:
    with sessions() as s:
        found = s.scalar(
            select(CampaignEntry).where(
                CampaignEntry.campaign_id == campaign_id, CampaignEntry.account_id == account_id
            )
        )
        assert found is not None
        return found


def test_reservation_inserts_the_attempt_and_the_guard_before_dialling(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 10)
    cid = started(sessions, "c", list_id)
    first = queue.reserve(sessions, cid, 3, worker=W, now=WED_10_BOGOTA)
    second = queue.reserve(sessions, cid, 3, worker=W, now=WED_10_BOGOTA)
    assert len(first) == len(second) == 3
    assert not {r.account_id for r in first} & {r.account_id for r in second}
    with sessions() as s:  # committed by reserve(), visible from a new session
        attempts = s.scalars(select(Attempt).order_by(Attempt.id)).all()
        assert [a.id for a in attempts] == [r.attempt_id for r in first + second]
        assert all(a.result is None and a.campaign_id == cid for a in attempts)
        dials = {d.account_id: d.attempt_id for d in s.scalars(select(ActiveDial))}
        assert dials == {r.account_id: r.attempt_id for r in first + second}
        statuses = s.execute(
            select(CampaignEntry.status, func.count()).group_by(CampaignEntry.status)
        ).all()
        assert dict(statuses) == {"in_progress": 6, "pending": 4}
    r = first[0]
    assert r.e164.startswith("+57300") and r.jurisdiction == "CO" and r.dialplan_id == "auto"


def test_database_refuses_a_second_call_in_progress_for_one_account(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 1)
    cid = started(sessions, "c", list_id)
    (r,) = queue.reserve(sessions, cid, 1, worker=W, now=WED_10_BOGOTA)
    with pytest.raises(IntegrityError), sessions.begin() as s:
        other = Attempt(account_id=r.account_id, phone_id=r.phone_id, started_at=utcnow())
        s.add(other)
        s.flush()
        s.add(ActiveDial(account_id=r.account_id, attempt_id=other.id, worker="x"))


def test_order_is_callbacks_then_priority_then_due_time(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 6)
    cid = started(sessions, "c", list_id)
    ids = _account_ids(sessions, cid)
    with sessions.begin() as s:
        s.add(Callback(account_id=ids[5], due_at=WED_10_BOGOTA - timedelta(minutes=1)))
        s.add(Callback(account_id=ids[3], due_at=WED_10_BOGOTA + timedelta(hours=1)))  # not due
        entries = {e.account_id: e for e in s.scalars(select(CampaignEntry))}
        entries[ids[4]].priority = -1
        entries[ids[0]].next_at = WED_10_BOGOTA - timedelta(hours=2)
        entries[ids[1]].next_at = WED_10_BOGOTA - timedelta(hours=3)
    got = queue.reserve(sessions, cid, 4, worker=W, now=WED_10_BOGOTA)
    assert [r.account_id for r in got] == [ids[5], ids[4], ids[1], ids[0]]
    assert got[0].callback_id is not None and got[1].callback_id is None
    with sessions() as s:
        statuses = {a: st for a, st in s.execute(select(Callback.account_id, Callback.status))}
    assert statuses == {ids[5]: "done", ids[3]: "pending"}


def test_skips_promises_restrictions_and_calls_in_progress_elsewhere(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 6)
    cid = started(sessions, "a", list_id)
    other = started(sessions, "b", seed(engine, 1, list_name="b", first=100))
    ids = _account_ids(sessions, cid)
    promised, stopped, disputed, wrong, busy, free = ids
    with sessions.begin() as s:
        due = date(2026, 3, 20)
        s.add(Promise(account_id=promised, amount_minor=1, currency="COP", due_date=due))
        s.add(ContactRestriction(account_id=stopped, kind="stop_contact", scope="account"))
        s.add(ContactRestriction(account_id=disputed, kind="dispute", scope="account"))
        first_phone = s.scalar(select(Phone.id).where(Phone.account_id == wrong))
        s.add(
            ContactRestriction(
                account_id=wrong, phone_id=first_phone, kind="wrong_number", scope="phone"
            )
        )
        second = repo.add_phone(s, wrong, "+573109999999", consent=True)
        # The same debtor is being called by campaign "b" right now.
        elsewhere = Attempt(
            campaign_id=other, account_id=busy, phone_id=first_phone, started_at=utcnow()
        )
        s.add(elsewhere)
        s.flush()
        s.add(ActiveDial(account_id=busy, attempt_id=elsewhere.id, campaign_id=other, worker="x"))
    got = queue.reserve(sessions, cid, 6, worker=W, now=WED_10_BOGOTA)
    assert sorted(r.account_id for r in got) == sorted([wrong, free])
    assert next(r.phone_id for r in got if r.account_id == wrong) == second.id
    assert _entry(sessions, cid, stopped).last_result == "restricted"
    assert _entry(sessions, cid, disputed).status == "done"
    later = _entry(sessions, cid, promised)
    assert later.status == "pending" and later.next_at == datetime(2026, 3, 21, tzinfo=UTC)
    assert _entry(sessions, cid, busy).next_at == WED_10_BOGOTA + queue.BUSY_ELSEWHERE


def test_outside_the_window_nothing_is_reserved_and_the_entry_waits_for_the_opening(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 2)
    cid = started(sessions, "c", list_id)
    evening = datetime(2026, 3, 11, 19, 30, tzinfo=BOGOTA)
    assert queue.reserve(sessions, cid, 2, worker=W, now=evening) == []
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 0
        nexts = set(s.scalars(select(CampaignEntry.next_at)))
    assert nexts == {datetime(2026, 3, 12, 7, 0, tzinfo=BOGOTA)}
    # The next decision does not look at them again before then (no rescan per decision).
    assert queue.reserve(sessions, cid, 2, worker=W, now=evening + timedelta(minutes=5)) == []
    morning = queue.reserve(
        sessions, cid, 2, worker=W, now=datetime(2026, 3, 12, 7, 0, tzinfo=BOGOTA)
    )
    assert len(morning) == 2


def test_caps_come_from_the_ledger_in_the_reserving_transaction(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Colombia: after a contact, at most one attempt a day (co.once_a_day)."""
    list_id = seed(engine, 1)
    cid = started(sessions, "c", list_id)
    (r,) = queue.reserve(sessions, cid, 1, worker=W, now=WED_10_BOGOTA)
    with sessions.begin() as s:  # the debtor was reached on that call
        s.add(
            Call(
                id="call-1",
                attempt_id=r.attempt_id,
                account_id=r.account_id,
                phone_id=r.phone_id,
                dialplan_id="es-419/late",
                dialplan_version="1",
                right_party=True,
                status="ended",
                started_at=WED_10_BOGOTA,
            )
        )
    later = WED_10_BOGOTA + timedelta(hours=1)
    results.finish(sessions, r, Outcome("no_answer"), later)  # the policy would retry...
    due = _entry(sessions, cid, r.account_id).next_at
    assert queue.reserve(sessions, cid, 1, worker=W, now=due) == []  # ...but the cap refuses
    entry = _entry(sessions, cid, r.account_id)
    assert entry.next_at == datetime(2026, 3, 12, 7, 0, tzinfo=BOGOTA)
    assert len(queue.reserve(sessions, cid, 1, worker=W, now=entry.next_at)) == 1


def test_colombias_daily_cap_counts_the_same_debtors_other_debt(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Two debts of one debtor (one document, two portfolios of the creditor): reached this
    morning about the first, the second waits for tomorrow (co.once_a_day is per person);
    another debtor with the same kind of history about someone else is called."""
    first_debt, second_debt, stranger = (seed(engine, 1, first=i) for i in range(3))
    cid = started(sessions, "c", second_debt)
    morning = WED_10_BOGOTA - timedelta(hours=2)
    with sessions.begin() as s:
        ids: dict[int, int] = {}
        for list_id in (first_debt, second_debt, stranger):
            rows = select(CallListRow.account_id).where(CallListRow.call_list_id == list_id)
            ids[list_id] = int(s.scalar(rows) or 0)
        other = repo.portfolio(s, "Banco Andino", "Hipotecas").id
        found = s.scalars(select(Account).where(Account.id.in_(ids.values())))
        accounts = {a.id: a for a in found}
        accounts[ids[first_debt]].document_number = "1020304050"
        accounts[ids[second_debt]].document_number = "1020304050"
        accounts[ids[second_debt]].portfolio_id = other
        accounts[ids[stranger]].document_number = "99999999"
        phone = s.scalar(select(Phone.id).where(Phone.account_id == ids[first_debt]))
        attempt = Attempt(
            account_id=ids[first_debt],
            phone_id=phone,
            started_at=morning,
            answered_at=morning,
            result="answered",
        )
        s.add(attempt)
        s.flush()
        s.add(
            Call(
                id="call-first-debt",
                attempt_id=attempt.id,
                account_id=ids[first_debt],
                phone_id=phone,
                dialplan_id="es-419/late",
                dialplan_version="1",
                right_party=True,
                status="ended",
                started_at=morning,
            )
        )
    assert queue.reserve(sessions, cid, 1, worker=W, now=WED_10_BOGOTA) == []
    entry = _entry(sessions, cid, ids[second_debt])
    assert entry.next_at == datetime(2026, 3, 12, 7, 0, tzinfo=BOGOTA)
    with sessions() as s:
        sub = subject(s, ids[second_debt], WED_10_BOGOTA)
        assert not sub.ledger.attempts and len(sub.person_ledger.attempts) == 1
        assert same_person(s, [ids[stranger]]) == {ids[stranger]: (ids[stranger],)}
    stranger_campaign = started(sessions, "s", stranger)
    assert len(queue.reserve(sessions, stranger_campaign, 1, worker=W, now=WED_10_BOGOTA)) == 1


def test_two_debts_of_one_debtor_are_never_dialled_at_once(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """One document, two accounts in two campaigns: the second waits for the first call."""
    lists = [seed(engine, 1, first=i) for i in range(2)]
    with sessions.begin() as s:
        for list_id in lists:
            rows = select(CallListRow.account_id).where(CallListRow.call_list_id == list_id)
            s.get_one(Account, s.scalar(rows)).document_number = "1020304050"
    first, second = (started(sessions, name, lst) for name, lst in zip("ab", lists, strict=True))
    (call,) = queue.reserve(sessions, first, 1, worker=W, now=WED_10_BOGOTA)
    assert queue.reserve(sessions, second, 1, worker="other:2", now=WED_10_BOGOTA) == []
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 1  # the refused one undone
        assert s.scalar(select(ActiveDial.person_id)) == call.account_id
    results.finish(sessions, call, Outcome("no_answer"), WED_10_BOGOTA + timedelta(minutes=1))
    later = WED_10_BOGOTA + queue.BUSY_ELSEWHERE + timedelta(minutes=1)
    (other,) = queue.reserve(sessions, second, 1, worker="other:2", now=later)
    assert other.account_id != call.account_id


def test_connect_time_recheck_aborts_a_call_reserved_at_185958_connecting_at_190003(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 1)
    cid = started(sessions, "c", list_id)
    reserved_at = datetime(2026, 3, 11, 18, 59, 58, tzinfo=BOGOTA)
    (r,) = queue.reserve(sessions, cid, 1, worker=W, now=reserved_at)
    with sessions() as s:
        on_time = results.recheck(s, r.attempt_id, reserved_at + timedelta(seconds=1))
        late = results.recheck(s, r.attempt_id, datetime(2026, 3, 11, 19, 0, 3, tzinfo=BOGOTA))
    assert on_time.allowed  # the reserved attempt itself does not count against it
    assert not late.allowed and late.rule is not None and late.rule.startswith("co.hours")
    assert late.next_allowed_at == datetime(2026, 3, 12, 7, 0, tzinfo=BOGOTA)
    status = results.finish(
        sessions, r, Outcome("aborted", next_allowed_at=late.next_allowed_at), reserved_at
    )
    entry = _entry(sessions, cid, r.account_id)
    assert status == "pending" and entry.attempts == 0 and entry.next_at == late.next_allowed_at
    with sessions() as s:
        assert s.scalar(select(Attempt.result)) == "aborted"  # still counted in the ledger
        assert s.scalar(select(func.count()).select_from(ActiveDial)) == 0


def test_retry_policy_per_result_then_done(engine: Engine, sessions: sessionmaker[Session]) -> None:
    list_id = seed(engine, 1)
    retry = {
        "busy": {"delay_s": 600, "max_attempts": 2},
        "no_answer": {"delay_s": 60, "max_attempts": 3},
    }
    cid = started(sessions, "c", list_id, retry=retry)
    now = WED_10_BOGOTA
    (r,) = queue.reserve(sessions, cid, 1, worker=W, now=now)
    assert results.finish(sessions, r, Outcome("busy", sip_code=486), now) == "pending"
    entry = _entry(sessions, cid, r.account_id)
    assert entry.next_at == now + timedelta(seconds=600) and entry.last_result == "busy"
    assert queue.reserve(sessions, cid, 1, worker=W, now=now + timedelta(seconds=599)) == []
    now += timedelta(seconds=600)
    (r,) = queue.reserve(sessions, cid, 1, worker=W, now=now)
    assert results.finish(sessions, r, Outcome("busy", sip_code=486), now) == "done"
    entry = _entry(sessions, cid, r.account_id)
    assert entry.status == "done" and entry.attempts == 2 and entry.last_result == "busy"
    with sessions() as s:
        assert [a.result for a in s.scalars(select(Attempt).order_by(Attempt.id))] == [
            "busy",
            "busy",
        ]


def test_answered_and_rejected_end_the_account_a_callback_keeps_it_pending(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 3)
    cid = started(sessions, "c", list_id)
    a, b, c = queue.reserve(sessions, cid, 3, worker=W, now=WED_10_BOGOTA)
    later = WED_10_BOGOTA + timedelta(days=1)
    with sessions.begin() as s:
        s.add(Callback(account_id=c.account_id, due_at=later))
    assert (
        results.finish(sessions, a, Outcome("answered", 200, WED_10_BOGOTA), WED_10_BOGOTA)
        == "done"
    )
    assert results.finish(sessions, b, Outcome("rejected", 603), WED_10_BOGOTA) == "done"
    assert (
        results.finish(sessions, c, Outcome("answered", 200, WED_10_BOGOTA), WED_10_BOGOTA)
        == "pending"
    )
    assert _entry(sessions, cid, c.account_id).next_at == later


def test_release_stale_frees_a_dead_dialers_accounts(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 2)
    cid = started(sessions, "c", list_id)
    got = queue.reserve(sessions, cid, 2, worker="dead:9", now=WED_10_BOGOTA)
    assert results.release_stale(sessions, "other:1", WED_10_BOGOTA) == 0
    assert results.release_stale(sessions, "dead:9", WED_10_BOGOTA) == 2
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(ActiveDial)) == 0
        assert set(s.scalars(select(Attempt.result))) == {"interrupted"}
    assert all(_entry(sessions, cid, r.account_id).status == "pending" for r in got)
