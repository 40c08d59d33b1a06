"""Reserve the next calls of a campaign, re-check them at connect time, record their results.

A reservation is one transaction that picks due entries of the campaign (scheduled callbacks
first, then by priority and due time), checks each account (no call in progress in any
campaign, no active promise, no restriction, the compliance pack allows it now, caps counted
from the contact ledger), and inserts the attempt row and the account's ``active_dials`` row
before anything is dialled. So a crash after the INVITE still counts the attempt, and the
``active_dials`` primary key makes a second in-progress call to one account impossible at the
database level, whatever the campaign or the process.

Concurrency: on PostgreSQL the entries and the account rows are locked with
``SELECT ... FOR UPDATE SKIP LOCKED``, so several dialer processes reserve disjoint calls
without waiting on each other and the caps of one account are read by one at a time. SQLite
has a single writer: every write transaction here starts with ``BEGIN IMMEDIATE``.

Blocking (SQLAlchemy): the worker runs these on the ``db_pool``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import phonenumbers
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm import repo
from voiceagent.crm.models import (
    Account,
    ActiveDial,
    Attempt,
    Call,
    Callback,
    Campaign,
    CampaignEntry,
    ContactRestriction,
    Phone,
    Portfolio,
)
from voiceagent.crm.types import utcnow
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer import rules as r
from voiceagent.dialer.ledger import (
    RESTRICTION_FLAGS,
    Subject,
    build_ledger,
    phone_zones,
    subject,
)
from voiceagent.dialer.packs import get_pack
from voiceagent.dialog.routing import Routing

BUSY_ELSEWHERE = timedelta(seconds=30)
"""How long an account with a call in progress elsewhere waits before it is looked at again."""
MAX_ROUNDS = 8
"""Candidate batches one reservation looks at before giving up (bounds the transaction)."""


@dataclass(frozen=True, slots=True)
class Recheck:
    """The connect-time verdict: go ahead, or abort because ``rule`` forbids it now."""

    allowed: bool
    rule: str | None = None
    reason: str | None = None
    next_allowed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    """A call the dialer reserved: its attempt row exists and its account is locked for it."""

    attempt_id: int
    campaign_id: int
    account_id: int
    phone_id: int
    e164: str
    """The number to dial (E.164)."""
    dialplan_id: str
    """``<locale>/<name>``, or ``auto`` when no route matched."""
    dialplan_version: str
    jurisdiction: str
    """Compliance pack the call was checked against."""
    reserved_at: datetime
    callback_id: int | None = None
    """The scheduled callback this call honours, if any."""
    connect_check: Callable[[datetime], Awaitable[Recheck]] | None = field(
        default=None, compare=False, repr=False
    )
    """Set by the worker: await it with the answer time before the callee hears anything."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a placed call ended, as the telephony side reports it to the worker."""

    result: str
    """``answered``, ``no_answer``, ``busy``, ``failed``, ``machine``, ``rejected``,
    ``abandoned`` (answered with no free seat) or ``aborted`` (refused at connect time)."""
    sip_code: int | None = None
    answered_at: datetime | None = None
    call_id: str | None = None
    """The ``calls`` row the session opened (:meth:`DbCallSink.open_call`), if answered."""
    next_allowed_at: datetime | None = None
    """For ``aborted``: when the rules allow the account again (from :class:`Recheck`)."""


@contextmanager
def write_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction takes the write lock first on SQLite; commits on exit."""
    with sessions() as s:
        if s.get_bind().dialect.name == "sqlite":
            s.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield s
        s.commit()


def _insert(s: Session) -> Any:
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def _pg(s: Session) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def _pick_phone(s: Session, account_id: int, blocked_phones: set[int]) -> Phone | None:
    phones = s.scalars(
        select(Phone).where(Phone.account_id == account_id).order_by(Phone.priority, Phone.id)
    )
    return next((p for p in phones if p.id not in blocked_phones), None)


def _busy(s: Session, account_id: int) -> bool:
    dialling = exists().where(ActiveDial.account_id == account_id)
    talking = exists().where(Call.account_id == account_id, Call.status == "in_progress")
    return bool(s.scalar(select(dialling | talking)))


def _subject(s: Session, account: Account, phone: Phone, kinds: set[str], now: datetime) -> Subject:
    """:func:`voiceagent.dialer.ledger.subject` from rows already read (fewer queries)."""
    zones = [account.timezone] if account.timezone else []
    zones += [z for z in phone_zones(phone.e164) if z not in zones]
    extra = account.extra or {}
    country = extra.get("country") or phonenumbers.region_code_for_number(
        phonenumbers.parse(phone.e164)
    )
    subdivision = extra.get("subdivision") or extra.get("state")
    flags = r.Flags(
        restrictions=frozenset(RESTRICTION_FLAGS[k] for k in kinds if k in RESTRICTION_FLAGS),
        authorized_channels=frozenset({"voice"}) if phone.consent else frozenset(),
        phone_type=phone.type,
    )
    return Subject(
        account_id=account.id,
        phone_id=phone.id,
        jurisdiction=str(country).upper() if country else None,
        subdivision=str(subdivision).upper() if subdivision else None,
        zones=tuple(zones),
        ledger=build_ledger(s, account.id, now),
        flags=flags,
    )


class _Reserver:
    """One reservation transaction."""

    def __init__(self, s: Session, campaign: Campaign, now: datetime, worker: str) -> None:
        self.s, self.campaign, self.now, self.worker = s, campaign, now, worker
        self.config = cmp.config_of(campaign)
        self.pg = _pg(s)

    def _done(self, entry: CampaignEntry, reason: str) -> None:
        entry.status, entry.last_result, entry.updated_at = "done", reason, self.now

    def _later(self, entry: CampaignEntry, at: datetime) -> None:
        entry.next_at, entry.updated_at = max(at, self.now + timedelta(seconds=1)), self.now

    def try_entry(
        self, entry: CampaignEntry, routing: Routing | None, callback_id: int | None
    ) -> Reservation | None:
        s, now = self.s, self.now
        lock = select(Account).where(Account.id == entry.account_id)
        account = s.scalar(lock.with_for_update(skip_locked=True) if self.pg else lock)
        if account is None:  # another dialer holds this account right now
            return None
        if account.status != "active":
            self._done(entry, f"account_{account.status}")
            return None
        if _busy(s, account.id):
            self._later(entry, now + BUSY_ELSEWHERE)
            return None
        promise = repo.active_promise(s, account.id)
        if promise is not None:
            day_after = promise.due_date + timedelta(days=1)
            self._later(entry, datetime.combine(day_after, time(), tzinfo=UTC))
            return None
        found = s.scalars(
            select(ContactRestriction).where(
                ContactRestriction.account_id == account.id, ContactRestriction.lifted_at.is_(None)
            )
        ).all()
        if any(x.scope == "account" for x in found):
            self._done(entry, "restricted")
            return None
        blocked_phones = {x.phone_id for x in found if x.phone_id is not None}
        phone = _pick_phone(s, account.id, blocked_phones)
        if phone is None:
            self._done(entry, "no_phone")
            return None
        sub = _subject(
            s, account, phone, {x.kind for x in found if x.phone_id in (None, phone.id)}, now
        )
        pack_id = self.config.jurisdiction or sub.jurisdiction
        try:
            pack = get_pack(pack_id or "")
        except KeyError:
            self._done(entry, "no_jurisdiction")
            return None
        decision = r.check(pack, now, sub.zones, sub.subdivision, sub.ledger, sub.flags)
        if not decision.allowed:
            if decision.next_allowed_at is None:
                self._done(entry, f"blocked:{decision.rule_id}")
            else:
                self._later(entry, decision.next_allowed_at)
            return None
        attempt = Attempt(
            campaign_id=self.campaign.id, account_id=account.id, phone_id=phone.id, started_at=now
        )
        s.add(attempt)
        s.flush()
        guard = _insert(s)(ActiveDial).values(
            account_id=account.id,
            attempt_id=attempt.id,
            campaign_id=self.campaign.id,
            worker=self.worker,
            reserved_at=now,
        )
        if not s.execute(guard.on_conflict_do_nothing()).rowcount:  # type: ignore[attr-defined]
            s.delete(attempt)
            self._later(entry, now + BUSY_ELSEWHERE)
            return None
        entry.status, entry.attempts, entry.last_attempt_id = (
            "in_progress",
            entry.attempts + 1,
            attempt.id,
        )
        entry.updated_at = now
        if callback_id is not None:
            s.execute(update(Callback).where(Callback.id == callback_id).values(status="done"))
        portfolio = s.scalar(select(Portfolio.name).where(Portfolio.id == account.portfolio_id))
        dialplan = cmp.choose_dialplan(
            self.config,
            routing,
            portfolio=portfolio or "",
            days_past_due=account.days_past_due,
            locale=account.locale,
        )
        return Reservation(
            attempt_id=attempt.id,
            campaign_id=self.campaign.id,
            account_id=account.id,
            phone_id=phone.id,
            e164=phone.e164,
            dialplan_id=dialplan,
            dialplan_version=self.config.dialplan_version,
            jurisdiction=pack.id,
            reserved_at=now,
            callback_id=callback_id,
        )

    def candidates(self, limit: int, seen: set[int]) -> list[tuple[CampaignEntry, int | None]]:
        """Due callbacks first, then due entries by priority and due time (locked rows skipped)."""
        c = self.campaign.id
        base = [CampaignEntry.campaign_id == c, CampaignEntry.status == "pending"]
        if seen:
            base.append(CampaignEntry.id.not_in(seen))
        callbacks = (
            select(CampaignEntry, Callback.id)
            .join(Callback, Callback.account_id == CampaignEntry.account_id)
            .where(*base, Callback.status == "pending", Callback.due_at <= self.now)
            .order_by(Callback.due_at, Callback.id)
            .limit(limit)
        )
        due = (
            select(CampaignEntry)
            .where(*base, CampaignEntry.next_at <= self.now)
            .order_by(CampaignEntry.priority, CampaignEntry.next_at, CampaignEntry.id)
            .limit(limit)
        )
        if self.pg:
            callbacks = callbacks.with_for_update(skip_locked=True, of=CampaignEntry)
            due = due.with_for_update(skip_locked=True)
        out: list[tuple[CampaignEntry, int | None]] = []
        taken: set[int] = set()
        for entry, callback_id in self.s.execute(callbacks):
            if entry.id not in taken:
                out.append((entry, callback_id))
                taken.add(entry.id)
        for entry in self.s.scalars(due):
            if entry.id not in taken and len(out) < limit:
                out.append((entry, None))
                taken.add(entry.id)
        return out


def reserve(
    sessions: sessionmaker[Session],
    campaign_id: int,
    n: int,
    *,
    worker: str,
    now: datetime | None = None,
    routing: Routing | None = None,
) -> list[Reservation]:
    """Reserve up to ``n`` calls of a running campaign in one committed transaction.

    Args:
        sessions: Session factory.
        campaign_id: The campaign.
        n: Most calls to reserve (the free channels the pacer allows).
        worker: ``host:pid`` of the dialer (stored with each reservation).
        now: The reservation moment (default: the clock).
        routing: Routes for campaigns whose dialplan is ``auto``.
    """
    if n <= 0:
        return []
    now = now or utcnow()
    with write_session(sessions) as s:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None or campaign.status != "running":
            return []
        reserver = _Reserver(s, campaign, now, worker)
        out: list[Reservation] = []
        seen: set[int] = set()
        for _ in range(MAX_ROUNDS):
            batch = reserver.candidates(max(2 * (n - len(out)), 8), seen)
            if not batch:
                break
            for entry, callback_id in batch:
                seen.add(entry.id)
                reservation = reserver.try_entry(entry, routing, callback_id)
                if reservation is not None:
                    out.append(reservation)
                    if len(out) >= n:
                        return out
        return out


def recheck(s: Session, attempt_id: int, connect_at: datetime) -> Recheck:
    """Evaluate the compliance rules again for a reserved attempt at its connect time.

    The attempt itself is left out of the ledger (it was counted when reserved).
    """
    attempt = s.get(Attempt, attempt_id)
    if attempt is None:
        raise LookupError(f"no attempt {attempt_id}")
    campaign = s.get(Campaign, attempt.campaign_id) if attempt.campaign_id else None
    sub = subject(
        s, attempt.account_id, connect_at, phone_id=attempt.phone_id, exclude_attempt_id=attempt.id
    )
    if repo.active_promise(s, attempt.account_id) is not None:
        return Recheck(False, "crm.active_promise", "the account has a pending promise")
    pack_id = (campaign.jurisdiction if campaign else None) or sub.jurisdiction
    try:
        pack = get_pack(pack_id or "")
    except KeyError:
        return Recheck(False, "crm.no_jurisdiction", f"no compliance pack for {pack_id!r}")
    decision = r.check(pack, connect_at, sub.zones, sub.subdivision, sub.ledger, sub.flags)
    if decision.allowed:
        return Recheck(True)
    return Recheck(False, decision.rule, decision.reason, decision.next_allowed_at)


def finish(
    sessions: sessionmaker[Session], reservation: Reservation, outcome: Outcome, now: datetime
) -> str:
    """Record an attempt's result, free its account and schedule its next try.

    Returns:
        The entry's new status (``pending`` or ``done``).
    """
    with write_session(sessions) as s:
        attempt = s.get(Attempt, reservation.attempt_id)
        if attempt is None:
            raise LookupError(f"no attempt {reservation.attempt_id}")
        attempt.result = outcome.result
        attempt.sip_code = outcome.sip_code
        if outcome.answered_at is not None and attempt.answered_at is None:
            attempt.answered_at = outcome.answered_at
        if attempt.ended_at is None:
            attempt.ended_at = now
        s.execute(delete(ActiveDial).where(ActiveDial.attempt_id == attempt.id))
        return _schedule(s, reservation.campaign_id, attempt, outcome, now)


def _schedule(
    s: Session, campaign_id: int, attempt: Attempt, outcome: Outcome, now: datetime
) -> str:
    entry = s.scalar(
        select(CampaignEntry).where(
            CampaignEntry.campaign_id == campaign_id,
            CampaignEntry.account_id == attempt.account_id,
        )
    )
    campaign = s.get(Campaign, campaign_id)
    if entry is None or campaign is None:
        return "done"
    entry.last_result, entry.updated_at = outcome.result, now
    callback = s.scalar(
        select(Callback.due_at)
        .where(Callback.account_id == attempt.account_id, Callback.status == "pending")
        .order_by(Callback.due_at)
        .limit(1)
    )
    if outcome.result == "aborted":  # refused at connect time: not a try of the debtor
        entry.attempts = max(0, entry.attempts - 1)
        due: datetime | None = outcome.next_allowed_at or now + BUSY_ELSEWHERE
    elif callback is not None:
        due = callback
    else:
        due = cmp.next_due(cmp.config_of(campaign), outcome.result, entry.attempts, now)
    if due is None:
        entry.status = "done"
    else:
        entry.status, entry.next_at = "pending", due
    return entry.status


def release_stale(sessions: sessionmaker[Session], worker: str, now: datetime) -> int:
    """Free the accounts a dead dialer process left reserved; their attempts end ``interrupted``.

    Run it when a dialer starts, with its own worker name (``host:pid`` of the dead process
    when known). Returns how many were freed.
    """
    with write_session(sessions) as s:
        stale = list(s.scalars(select(ActiveDial).where(ActiveDial.worker == worker)))
        for dial in stale:
            attempt = s.get(Attempt, dial.attempt_id)
            s.delete(dial)
            if attempt is None:
                continue
            attempt.result = attempt.result or "interrupted"
            attempt.ended_at = attempt.ended_at or now
            if dial.campaign_id is not None:
                _schedule(s, dial.campaign_id, attempt, Outcome(result="failed"), now)
        return len(stale)


def campaign_load(s: Session, campaign_id: int) -> tuple[Campaign | None, int]:
    """The campaign row and how many of its calls are in progress (across all dialers)."""
    campaign = s.get(Campaign, campaign_id)
    count = s.scalar(
        select(func.count()).select_from(ActiveDial).where(ActiveDial.campaign_id == campaign_id)
    )
    return campaign, int(count or 0)
