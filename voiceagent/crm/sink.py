"""The call's CRM writer: write before speak, one committed transaction per commitment.

:class:`DbCallSink` implements :class:`voiceagent.call.actions.CallSink` (structurally; ``crm``
does not import ``call``) plus the call's lifecycle. Its methods block; the call session runs
them on the ``db_pool``.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm.models import Account, Attempt, Call, Callback, CallEvent, ContactRestriction
from voiceagent.crm.models import Promise as PromiseRow
from voiceagent.crm.types import to_minor, utcnow
from voiceagent.dialog import actions as act

FLAG_RESTRICTIONS = {"stop_contact": "account", "dispute": "account", "wrong_number": "phone"}
"""Dialog flags that restrict further contact, and the scope each one applies to.

``already_paid`` and ``refusal`` restrict nothing; they are journalled as call events.
"""


def default_worker() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _event_kind(action: act.Action) -> str:
    name = type(action).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class DbCallSink:
    """Writes a call and everything it commits to the CRM database.

    Args:
        sessions: Session factory from :func:`voiceagent.crm.db.session_factory`.
        worker: Name of this worker process, stored on each call it opens.
    """

    def __init__(self, sessions: sessionmaker[Session], worker: str | None = None) -> None:
        self.sessions = sessions
        self.worker = worker or default_worker()

    def open_call(
        self,
        *,
        dialplan_id: str,
        dialplan_version: str,
        account_id: int | None = None,
        phone_id: int | None = None,
        attempt_id: int | None = None,
        direction: str = "outbound",
        recording_path: str | None = None,
        transcript_path: str | None = None,
        call_id: str | None = None,
    ) -> str:
        """Commit a new in-progress call and return its id (a new UUID unless given)."""
        call_id = call_id or uuid.uuid4().hex
        now = utcnow()
        with self.sessions.begin() as s:
            s.add(
                Call(
                    id=call_id,
                    attempt_id=attempt_id,
                    account_id=account_id,
                    phone_id=phone_id,
                    direction=direction,
                    dialplan_id=dialplan_id,
                    dialplan_version=dialplan_version,
                    recording_path=recording_path,
                    transcript_path=transcript_path,
                    worker=self.worker,
                    started_at=now,
                    timings={},
                )
            )
            if attempt_id is not None:
                s.execute(
                    update(Attempt)
                    .where(Attempt.id == attempt_id, Attempt.answered_at.is_(None))
                    .values(answered_at=now, result="answered")
                )
        return call_id

    def commit(self, call_id: str, action: act.Action) -> None:
        """Durably record a promise, callback, flag, slip or transfer (committed on return)."""
        if isinstance(action, act.Say):
            return
        with self.sessions.begin() as s:
            call = s.get(Call, call_id)
            if call is None:
                raise LookupError(f"no call {call_id!r}: open_call first")
            data = {k: _jsonable(v) for k, v in asdict(action).items()}
            s.add(CallEvent(call_id=call_id, kind=_event_kind(action), data=data, at=utcnow()))
            if isinstance(action, act.RecordPromise):
                s.add(_promise(call, action))
            elif isinstance(action, act.ScheduleCallback):
                s.add(_callback(s, call, action))
            elif isinstance(action, act.RecordFlag):
                restriction = _restriction(call, action.flag)
                if restriction is not None:
                    s.add(restriction)

    def event(self, call_id: str, kind: str, data: dict[str, Any]) -> None:
        """Commit one event of the call as it happens (answered, disclosure played, ...)."""
        with self.sessions.begin() as s:
            s.add(CallEvent(call_id=call_id, kind=kind, data=data, at=utcnow()))

    def handoff(self, call_id: str, summary: dict[str, Any]) -> None:
        """Commit the summary a human gets with a transferred call (a ``handoff`` event)."""
        with self.sessions.begin() as s:
            s.add(CallEvent(call_id=call_id, kind="handoff", data=summary, at=utcnow()))

    def close_call(
        self,
        call_id: str,
        outcome: str,
        *,
        right_party: bool = False,
        timings: dict[str, Any] | None = None,
        transcript_path: str | None = None,
    ) -> None:
        """Commit the end of a call: outcome, right-party flag, duration and timings."""
        now = utcnow()
        with self.sessions.begin() as s:
            call = s.get(Call, call_id)
            if call is None:
                raise LookupError(f"no call {call_id!r}")
            call.status = "ended"
            call.outcome = outcome
            call.right_party = right_party
            call.ended_at = now
            call.duration_ms = int((now - call.started_at).total_seconds() * 1000)
            if timings is not None:
                call.timings = timings
            if transcript_path is not None:
                call.transcript_path = transcript_path
            if call.attempt_id is not None:
                s.execute(
                    update(Attempt)
                    .where(Attempt.id == call.attempt_id, Attempt.ended_at.is_(None))
                    .values(ended_at=now)
                )


def _promise(call: Call, action: act.RecordPromise) -> PromiseRow:
    if call.account_id is None:
        raise ValueError(f"call {call.id!r} has no account to record a promise on")
    return PromiseRow(
        account_id=call.account_id,
        call_id=call.id,
        amount_minor=to_minor(action.amount, action.currency),
        currency=action.currency,
        due_date=action.due,
        plan=action.plan,
        status="pending",
        paid_minor=0,
        created_at=utcnow(),
    )


def _callback(s: Session, call: Call, action: act.ScheduleCallback) -> Callback:
    if call.account_id is None:
        raise ValueError(f"call {call.id!r} has no account to schedule a callback for")
    due_at = action.at
    if due_at.tzinfo is None:  # the dialog speaks the debtor's local wall-clock time
        account = s.get(Account, call.account_id)
        assert account is not None
        due_at = due_at.replace(tzinfo=ZoneInfo(account.timezone))
    return Callback(
        account_id=call.account_id,
        phone_id=call.phone_id,
        call_id=call.id,
        due_at=due_at,
        status="pending",
        created_at=utcnow(),
    )


def _restriction(call: Call, flag: str) -> ContactRestriction | None:
    scope = FLAG_RESTRICTIONS.get(flag)
    if scope is None or call.account_id is None:
        return None
    if scope == "phone" and call.phone_id is None:
        scope = "account"
    return ContactRestriction(
        account_id=call.account_id,
        phone_id=call.phone_id,
        kind=flag,
        scope=scope,
        source_call_id=call.id,
        created_at=utcnow(),
    )


def mark_interrupted_calls(session: Session, worker: str | None = None) -> list[str]:
    """Close calls left in progress (the worker died) as interrupted; return their ids.

    Recording and transcript paths are kept, so the partial recording stays reachable. The
    caller commits.

    Args:
        session: An open session.
        worker: Only calls opened by this worker name; ``None`` for every worker (run it at
            start-up of a single-worker deployment, or once no worker is running).
    """
    query = select(Call).where(Call.status == "in_progress")
    if worker is not None:
        query = query.where(Call.worker == worker)
    now = utcnow()
    ids = []
    for call in session.scalars(query):
        call.status = "ended"
        call.interrupted = True
        call.outcome = call.outcome or "interrupted"
        call.ended_at = now
        call.duration_ms = int((now - call.started_at).total_seconds() * 1000)
        if call.attempt_id is not None:
            session.execute(
                update(Attempt)
                .where(Attempt.id == call.attempt_id, Attempt.ended_at.is_(None))
                .values(ended_at=now)
            )
        ids.append(call.id)
    session.flush()
    return ids
