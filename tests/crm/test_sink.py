"""DbCallSink: each commitment is its own committed transaction, visible before commit returns."""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.call.actions import WRITES, CallSink
from voiceagent.crm.db import make_engine, session_factory
from voiceagent.crm.models import Attempt, Call, Callback, CallEvent, ContactRestriction, Promise
from voiceagent.crm.sink import DbCallSink, mark_interrupted_calls
from voiceagent.crm.types import utcnow
from voiceagent.dialog import actions as act

PROMISE = act.RecordPromise(Decimal("150000.50"), "COP", date(2030, 1, 15), "full")


def _open(sink: DbCallSink, account: tuple[int, int], **kw: Any) -> str:
    return sink.open_call(
        dialplan_id="es-419/early",
        dialplan_version="3f2a",
        account_id=account[0],
        phone_id=account[1],
        recording_path="/var/rec/c1.wav",
        **kw,
    )


def test_is_a_call_sink(sessions: sessionmaker[Session]) -> None:
    sink: CallSink = DbCallSink(sessions)  # mypy checks this line when it checks tests
    ours = inspect.signature(DbCallSink.commit).parameters
    theirs = inspect.signature(CallSink.commit).parameters
    assert list(ours) == list(theirs) == ["self", "call_id", "action"]
    assert callable(sink.commit)


def test_promise_is_visible_to_another_connection_when_commit_returns(
    sessions: sessionmaker[Session], migrated_url: str, account: tuple[int, int]
) -> None:
    sink = DbCallSink(sessions)
    call_id = _open(sink, account)
    other = make_engine(migrated_url)  # a separate pool: nothing shared with the sink
    try:
        with session_factory(other)() as s:
            assert s.scalars(select(Promise)).all() == []
        sink.commit(call_id, PROMISE)
        with session_factory(other)() as s:
            promise = s.scalars(select(Promise)).one()
            assert (promise.amount_minor, promise.currency) == (15_000_050, "COP")
            assert (promise.due_date, promise.status, promise.call_id) == (
                date(2030, 1, 15),
                "pending",
                call_id,
            )
            event = s.scalars(select(CallEvent)).one()
            assert event.kind == "record_promise" and event.data["amount"] == "150000.50"
    finally:
        other.dispose()


def test_callback_in_the_debtors_timezone(
    sessions: sessionmaker[Session], account: tuple[int, int]
) -> None:
    sink = DbCallSink(sessions)
    call_id = _open(sink, account)
    sink.commit(call_id, act.ScheduleCallback(at=datetime(2030, 1, 16, 10, 0)))  # Bogotá 10:00
    with sessions() as s:
        callback = s.scalars(select(Callback)).one()
        assert callback.due_at == datetime(2030, 1, 16, 15, 0, tzinfo=UTC)
        assert (callback.phone_id, callback.status) == (account[1], "pending")


def test_flags_become_restrictions(
    sessions: sessionmaker[Session], account: tuple[int, int]
) -> None:
    sink = DbCallSink(sessions)
    call_id = _open(sink, account)
    for flag in ("wrong_number", "stop_contact", "dispute", "already_paid", "refusal"):
        sink.commit(call_id, act.RecordFlag(flag))
    sink.commit(call_id, act.SendSlip("sms"))
    sink.commit(call_id, act.Say("hola", "greet"))  # not a write: ignored
    with sessions() as s:
        got = {
            (r.kind, r.scope, r.phone_id, r.source_call_id)
            for r in s.scalars(select(ContactRestriction))
        }
        assert got == {
            ("wrong_number", "phone", account[1], call_id),
            ("stop_contact", "account", account[1], call_id),
            ("dispute", "account", account[1], call_id),
        }
        kinds = list(s.scalars(select(CallEvent.kind).order_by(CallEvent.id)))
        assert kinds == ["record_flag"] * 5 + ["send_slip"]


def test_call_lifecycle(sessions: sessionmaker[Session], account: tuple[int, int]) -> None:
    with sessions.begin() as s:
        attempt = Attempt(account_id=account[0], phone_id=account[1], started_at=utcnow())
        s.add(attempt)
    sink = DbCallSink(sessions, worker="w1")
    call_id = _open(sink, account, attempt_id=attempt.id, call_id="sip-abc")
    assert call_id == "sip-abc"
    sink.close_call(
        call_id,
        "promise",
        right_party=True,
        timings={"p95_turn_ms": 640},
        transcript_path="/var/rec/c1.json",
    )
    with sessions() as s:
        call = s.get(Call, call_id)
        assert call is not None
        assert (call.status, call.outcome, call.right_party, call.interrupted) == (
            "ended",
            "promise",
            True,
            False,
        )
        assert call.duration_ms is not None and call.duration_ms >= 0
        assert call.transcript_path == "/var/rec/c1.json" and call.worker == "w1"
        done = s.get(Attempt, attempt.id)
        assert done is not None and done.answered_at is not None and done.ended_at is not None
        assert done.result == "answered"
        assert mark_interrupted_calls(s) == []


def test_unknown_call_or_unrepresentable_amount_is_an_error(
    sessions: sessionmaker[Session], account: tuple[int, int]
) -> None:
    sink = DbCallSink(sessions)
    with pytest.raises(LookupError):
        sink.commit("nope", PROMISE)
    call_id = _open(sink, account)
    with pytest.raises(ValueError, match="decimals"):
        sink.commit(call_id, act.RecordPromise(Decimal("1.005"), "COP", date(2030, 1, 1), "full"))
    with sessions() as s:  # nothing half-written: the event rolled back with the promise
        assert s.scalars(select(CallEvent)).all() == []


def test_mark_interrupted_by_worker(
    sessions: sessionmaker[Session], account: tuple[int, int]
) -> None:
    a = _open(DbCallSink(sessions, worker="w1"), account)
    b = _open(DbCallSink(sessions, worker="w2"), account)
    with sessions.begin() as s:
        assert mark_interrupted_calls(s, worker="w1") == [a]
    with sessions.begin() as s:
        assert mark_interrupted_calls(s) == [b]
        call = s.get(Call, a)
        assert call is not None and call.interrupted and call.outcome == "interrupted"
        assert call.recording_path == "/var/rec/c1.wav"


def test_every_write_action_is_handled() -> None:
    assert set(WRITES) <= {act.RecordPromise, act.ScheduleCallback, act.RecordFlag, act.SendSlip}
