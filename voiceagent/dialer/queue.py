"""Reserve the next calls of a campaign (what happens after: :mod:`voiceagent.dialer.results`).

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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

import phonenumbers
from sqlalchemy import Table, bindparam, delete, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm.db import write_session
from voiceagent.crm.models import (
    ActiveDial,
    Attempt,
    Callback,
    Campaign,
    CampaignEntry,
)
from voiceagent.crm.types import utcnow
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer import queue_batch as qb
from voiceagent.dialer import rules as r
from voiceagent.dialer.besthours import BestHours
from voiceagent.dialer.ledger import RESTRICTION_FLAGS, Subject, phone_zones, same_person
from voiceagent.dialer.packs import get_pack
from voiceagent.dialer.ranking import RANK_MIN_WINDOW, RANK_WINDOW, rank
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


def _insert(s: Session) -> Any:
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def _pg(s: Session) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def _country(extra: dict[str, Any], e164: str) -> str | None:
    found = extra.get("country") or phonenumbers.region_code_for_number(phonenumbers.parse(e164))
    return str(found).upper() if found else None


def _subject(
    c: qb.Candidate, phone: qb.PhoneRow, ledger: r.Ledger, person_ledger: r.Ledger
) -> Subject:
    """:func:`voiceagent.dialer.ledger.subject` from rows already read (no queries)."""
    zones = [c.timezone] if c.timezone else []
    zones += [z for z in phone_zones(phone.e164) if z not in zones]
    extra = c.extra or {}
    subdivision = extra.get("subdivision") or extra.get("state")
    flags = r.Flags(
        restrictions=frozenset(
            RESTRICTION_FLAGS[k] for k in phone.restrictions if k in RESTRICTION_FLAGS
        ),
        authorized_channels=frozenset({"voice"}) if phone.consent else frozenset(),
        phone_type=phone.type,
    )
    return Subject(
        account_id=c.account_id,
        phone_id=phone.id,
        jurisdiction=_country(extra, phone.e164),
        subdivision=str(subdivision).upper() if subdivision else None,
        zones=tuple(zones),
        ledger=ledger,
        flags=flags,
        person_ledger=person_ledger,
    )


_ENTRIES = cast(Table, CampaignEntry.__table__)
_ACTIVE = cast(Table, ActiveDial.__table__)
_ADD_ATTEMPTS = insert(cast(Table, Attempt.__table__)).returning(
    Attempt.__table__.c.account_id, Attempt.__table__.c.id
)
"""Executed with many rows: one ``INSERT ... VALUES (...), (...) RETURNING`` (insertmanyvalues)."""


class _Reserver:
    """One reservation transaction: decides on candidates a batch at a time.

    Skipped entries are updated with one ``executemany`` per kind of skip; the reserved
    ones get their attempt rows and guards with one multi-row ``INSERT`` each.
    """

    def __init__(self, s: Session, campaign: Campaign, now: datetime, worker: str) -> None:
        self.s, self.campaign, self.now, self.worker = s, campaign, now, worker
        self.config = cmp.config_of(campaign)
        self.pg = _pg(s)
        self.done: list[dict[str, Any]] = []
        self.person: dict[int, int] = {}
        """Account -> its person (lowest account id of the debtor's with the creditor)."""
        self.later: list[dict[str, Any]] = []

    def _done(self, entry_id: int, reason: str) -> None:
        self.done.append({"e_id": entry_id, "e_result": reason})

    def _later(self, entry_id: int, at: datetime) -> None:
        self.later.append({"e_id": entry_id, "e_at": max(at, self.now + timedelta(seconds=1))})

    def flush_skips(self) -> None:
        """Write the skipped entries' new state (done with a reason, or due later)."""
        key: Any = bindparam("e_id")
        if self.done:
            self.s.connection().execute(
                update(_ENTRIES)
                .where(_ENTRIES.c.id == key)
                .values(status="done", last_result=bindparam("e_result"), updated_at=self.now),
                self.done,
            )
        if self.later:
            self.s.connection().execute(
                update(_ENTRIES)
                .where(_ENTRIES.c.id == key)
                .values(next_at=bindparam("e_at"), updated_at=self.now),
                self.later,
            )
        self.done, self.later = [], []

    def candidates(self, limit: int, seen: set[int]) -> list[qb.Candidate]:
        """Due callbacks first, then due entries by priority and due time (locked rows skipped)."""
        return qb.candidates(self.s, self.campaign.id, self.now, limit, seen, lock=self.pg)

    def screen(self, c: qb.Candidate) -> bool:
        """Apply the skips the candidate query found; whether the entry is still a candidate."""
        if c.account_status != "active":
            self._done(c.entry_id, f"account_{c.account_status}")
        elif c.busy:
            self._later(c.entry_id, self.now + BUSY_ELSEWHERE)
        elif c.promise_due is not None:
            day_after = c.promise_due + timedelta(days=1)
            self._later(c.entry_id, datetime.combine(day_after, time(), tzinfo=UTC))
        elif c.restricted:
            self._done(c.entry_id, "restricted")
        else:
            return True
        return False

    def decide(
        self, batch: list[qb.Candidate], routing: Routing | None
    ) -> list[tuple[qb.Candidate, qb.PhoneRow, str]]:
        """Check phones and the compliance rules; the candidates allowed now (phone, pack)."""
        ids = [c.account_id for c in batch]
        numbers = qb.phones(self.s, ids, {c.account_id for c in batch if c.phone_restricted})
        people = same_person(self.s, ids)
        self.person.update((a, people[a][0]) for a in ids)
        ledgers = qb.ledgers(self.s, sorted({a for i in ids for a in people[i]}), self.now)
        allowed: list[tuple[qb.Candidate, qb.PhoneRow, str]] = []
        for c in batch:
            phone = next((p for p in numbers[c.account_id] if not p.restrictions), None)
            if phone is None:
                self._done(c.entry_id, "no_phone")
                continue
            person = r.merge_ledgers([ledgers[a] for a in people[c.account_id]])
            sub = _subject(c, phone, ledgers[c.account_id], person)
            try:
                pack = get_pack(self.config.jurisdiction or sub.jurisdiction or "")
            except KeyError:
                self._done(c.entry_id, "no_jurisdiction")
                continue
            decision = sub.check(pack, self.now)
            if decision.allowed:
                allowed.append((c, phone, pack.id))
            elif decision.next_allowed_at is None:
                self._done(c.entry_id, f"blocked:{decision.rule_id}")
            else:
                self._later(c.entry_id, decision.next_allowed_at)
        return allowed

    def place(
        self, allowed: list[tuple[qb.Candidate, qb.PhoneRow, str]], routing: Routing | None
    ) -> list[Reservation]:
        """Insert the attempts and the guards; mark the entries (and callbacks) taken."""
        if not allowed:
            return []
        s, now, cid = self.s, self.now, self.campaign.id
        conn = s.connection()
        rows = [
            {"campaign_id": cid, "account_id": c.account_id, "phone_id": p.id, "started_at": now}
            for c, p, _ in allowed
        ]
        inserted = conn.execute(_ADD_ATTEMPTS, rows)
        attempt_of: dict[int, int] = {int(a): int(i) for a, i in inserted}
        guards = [
            {
                "account_id": c.account_id,
                "attempt_id": attempt_of[c.account_id],
                "campaign_id": cid,
                "worker": self.worker,
                "reserved_at": now,
                "person_id": self.person.get(c.account_id, c.account_id),
            }
            for c, _, _ in allowed
        ]
        guard = _insert(s)(_ACTIVE).on_conflict_do_nothing().returning(_ACTIVE.c.account_id)
        guarded = {int(a) for a in conn.execute(guard, guards).scalars()}
        lost = [c for c, _, _ in allowed if c.account_id not in guarded]
        if lost:  # a call to the account started elsewhere since the candidates were read
            s.execute(
                delete(Attempt).where(Attempt.id.in_([attempt_of[c.account_id] for c in lost]))
            )
            for c in lost:
                self._later(c.entry_id, now + BUSY_ELSEWHERE)
        won = [(c, p, pack) for c, p, pack in allowed if c.account_id in guarded]
        if not won:
            return []
        conn.execute(
            update(_ENTRIES)
            .where(_ENTRIES.c.id == bindparam("e_id"))
            .values(
                status="in_progress",
                attempts=_ENTRIES.c.attempts + 1,
                last_attempt_id=bindparam("e_attempt"),
                updated_at=now,
            ),
            [{"e_id": c.entry_id, "e_attempt": attempt_of[c.account_id]} for c, _, _ in won],
        )
        callbacks = [c.callback_id for c, _, _ in won if c.callback_id is not None]
        if callbacks:
            conn.execute(update(Callback).where(Callback.id.in_(callbacks)).values(status="done"))
        return [
            Reservation(
                attempt_id=attempt_of[c.account_id],
                campaign_id=cid,
                account_id=c.account_id,
                phone_id=p.id,
                e164=p.e164,
                dialplan_id=cmp.choose_dialplan(
                    self.config,
                    routing,
                    portfolio=c.portfolio or "",
                    days_past_due=c.days_past_due,
                    locale=c.locale,
                ),
                dialplan_version=self.config.dialplan_version,
                jurisdiction=pack,
                reserved_at=now,
                callback_id=c.callback_id,
            )
            for c, p, pack in won
        ]


def reserve(
    sessions: sessionmaker[Session],
    campaign_id: int,
    n: int,
    *,
    worker: str,
    now: datetime | None = None,
    routing: Routing | None = None,
    best_hours: BestHours | None = None,
) -> list[Reservation]:
    """Reserve up to ``n`` calls of a running campaign in one committed transaction.

    Each round reads a batch of candidates (one statement, skip checks included), applies the
    skips, reads the phones and contact ledgers of those left (one statement each), checks
    them against the compliance pack and reserves the allowed ones, in candidate order, or,
    with ``best_hours``, the best ``n`` of ``RANK_WINDOW`` times as many (:mod:`ranking`).

    Args:
        sessions: Session factory.
        campaign_id: The campaign.
        n: Most calls to reserve (the free channels the pacer allows).
        worker: ``host:pid`` of the dialer (stored with each reservation).
        now: The reservation moment (default: the clock).
        routing: Routes for campaigns whose dialplan is ``auto``.
        best_hours: Answer and right-party-contact estimates to order the allowed calls by.
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
        for round_no in range(MAX_ROUNDS):
            need = n - len(out)
            window = max(need * RANK_WINDOW, RANK_MIN_WINDOW) if best_hours is not None else need
            quota = window << min(round_no, 4)  # look further when the first ones were refused
            batch = reserver.candidates(max(2 * quota, 8), seen)
            if not batch:
                break
            picked: list[qb.Candidate] = []
            for c in batch:
                if len(picked) >= quota:
                    break
                seen.add(c.entry_id)
                if reserver.screen(c):
                    picked.append(c)
            if picked:
                allowed = reserver.decide(picked, routing)
                if best_hours is not None:
                    allowed = rank(allowed, best_hours, now)
                out += reserver.place(allowed[:need], routing)
                for c, _, _ in allowed[need:]:  # beyond n: left as they were, for the next call
                    seen.discard(c.entry_id)
            if len(out) >= n:
                break
        reserver.flush_skips()
        return out
