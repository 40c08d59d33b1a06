"""Set-at-a-time reads for a reservation: a batch of candidates, their phones and ledgers.

:func:`voiceagent.dialer.queue.reserve` decides for several entries at once; these read
what it needs for all of them in one statement each, instead of a handful per account:

* :func:`candidates`: the due entries (or those with a due callback) with their account, its
  portfolio and, as columns computed by indexed ``EXISTS`` subqueries, why the account may
  have to be skipped (a call in progress anywhere, a pending promise, a restriction). On
  PostgreSQL the entry and account rows are locked ``FOR UPDATE SKIP LOCKED`` in the same
  statement.
* :func:`phones`: the phones of the accounts, dialling order, with the phone-scoped
  restrictions in force.
* :func:`ledgers`: attempts and right-party conversations of the accounts over the lookback
  (one ``UNION ALL``), as :class:`voiceagent.dialer.rules.Ledger`.

Blocking (SQLAlchemy); run inside the reservation's transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, exists, func, literal, select, union_all
from sqlalchemy.orm import Session

from voiceagent.crm.models import (
    Account,
    ActiveDial,
    Attempt,
    Call,
    Callback,
    CampaignEntry,
    ContactRestriction,
    Phone,
    Portfolio,
    Promise,
)
from voiceagent.dialer.ledger import LOOKBACK
from voiceagent.dialer.rules import Contact, Ledger


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry to decide on, with what the skip checks found for its account."""

    entry_id: int
    account_id: int
    account_status: str
    timezone: str
    extra: dict[str, Any]
    days_past_due: int
    locale: str
    portfolio: str
    portfolio_id: int
    priority: int
    """The entry's priority (lower first)."""
    next_at: datetime
    """When the entry fell due."""
    busy: bool
    """A call to the account is being dialled or talked, in any campaign."""
    promise_due: date | None
    """Due date of the account's first pending promise."""
    restricted: bool
    """A restriction on the whole account is in force."""
    phone_restricted: bool
    """Some phone of the account is restricted (its phones are read with their restrictions)."""
    callback_id: int | None = None


@dataclass(frozen=True, slots=True)
class PhoneRow:
    """A phone of a candidate, with the kinds of the restrictions in force on it."""

    id: int
    e164: str
    type: str
    consent: bool
    restrictions: frozenset[str]


def _columns() -> list[Any]:
    account = CampaignEntry.account_id
    live = ContactRestriction.lifted_at.is_(None)
    return [
        CampaignEntry.id,
        account,
        Account.status,
        Account.timezone,
        Account.extra,
        Account.days_past_due,
        Account.locale,
        Portfolio.name,
        Account.portfolio_id,
        CampaignEntry.priority,
        CampaignEntry.next_at,
        (
            exists().where(ActiveDial.account_id == account)
            | exists().where(Call.account_id == account, Call.status == "in_progress")
        ).label("busy"),
        select(func.min(Promise.due_date))
        .where(Promise.account_id == account, Promise.status == "pending")
        .scalar_subquery()
        .label("promise_due"),
        exists()
        .where(
            ContactRestriction.account_id == account,
            live,
            ContactRestriction.scope == "account",
        )
        .label("restricted"),
        exists()
        .where(ContactRestriction.account_id == account, live, ContactRestriction.scope == "phone")
        .label("phone_restricted"),
    ]


def _base(query: Select[Any], seen: bool) -> Select[Any]:
    query = query.join(Account, Account.id == CampaignEntry.account_id).join(
        Portfolio, Portfolio.id == Account.portfolio_id
    )
    query = query.where(
        CampaignEntry.campaign_id == bindparam("q_campaign"), CampaignEntry.status == "pending"
    )
    return (
        query.where(CampaignEntry.id.not_in(bindparam("q_seen", expanding=True))) if seen else query
    )


@lru_cache(maxsize=64)
def _statements(limit: int, seen: bool, lock: bool) -> tuple[Select[Any], Select[Any]]:
    """The two candidate queries, built once per shape (building them costs more than running)."""
    now = bindparam("q_now", type_=CampaignEntry.__table__.c.next_at.type)
    callbacks = (
        _base(select(*_columns(), Callback.id), seen)
        .join(Callback, Callback.account_id == CampaignEntry.account_id)
        .where(Callback.status == "pending", Callback.due_at <= now)
        .order_by(Callback.due_at, Callback.id)
        .limit(limit)
    )
    due = (
        _base(select(*_columns(), literal(None).label("callback_id")), seen)
        .where(CampaignEntry.next_at <= now)
        .order_by(CampaignEntry.priority, CampaignEntry.next_at, CampaignEntry.id)
        .limit(limit)
    )
    if lock:
        callbacks = callbacks.with_for_update(skip_locked=True, of=[CampaignEntry, Account])
        due = due.with_for_update(skip_locked=True, of=[CampaignEntry, Account])
    return callbacks, due


def candidates(
    s: Session,
    campaign_id: int,
    now: datetime,
    limit: int,
    seen: Collection[int],
    *,
    lock: bool,
) -> list[Candidate]:
    """Entries with a due callback (by due time), then due entries (priority, due time, id).

    Args:
        s: The reservation's session.
        campaign_id: The campaign.
        now: The reservation moment.
        limit: Most entries in all.
        seen: Entry ids already decided on in this transaction.
        lock: Lock the entry and account rows ``FOR UPDATE SKIP LOCKED`` (PostgreSQL).
    """
    params: dict[str, Any] = {"q_campaign": campaign_id, "q_now": now}
    if seen:
        params["q_seen"] = list(seen)
    conn = s.connection()
    out: list[Candidate] = []
    taken: set[int] = set()
    for query in _statements(limit, bool(seen), lock):
        for row in conn.execute(query, params):
            if row[0] in taken or len(out) >= limit:
                continue
            taken.add(row[0])
            out.append(Candidate(*row))
    return out


def phones(
    s: Session, account_ids: Sequence[int], restricted: Collection[int]
) -> dict[int, list[PhoneRow]]:
    """Each account's phones in dialling order (priority, id), with their restrictions.

    Args:
        s: An open session.
        account_ids: The accounts.
        restricted: Those of them with a phone-scoped restriction in force (read only for them).
    """
    kinds: dict[int, set[str]] = {}
    if restricted:
        found = s.connection().execute(
            select(ContactRestriction.phone_id, ContactRestriction.kind).where(
                ContactRestriction.account_id.in_(list(restricted)),
                ContactRestriction.lifted_at.is_(None),
                ContactRestriction.phone_id.is_not(None),
            )
        )
        for phone_id, kind in found:
            kinds.setdefault(int(phone_id or 0), set()).add(kind)
    out: dict[int, list[PhoneRow]] = {a: [] for a in account_ids}
    rows = s.connection().execute(
        select(Phone.account_id, Phone.id, Phone.e164, Phone.type, Phone.consent)
        .where(Phone.account_id.in_(list(account_ids)))
        .order_by(Phone.account_id, Phone.priority, Phone.id)
    )
    for account_id, phone_id, e164, kind, consent in rows:
        out[account_id].append(
            PhoneRow(phone_id, e164, kind, bool(consent), frozenset(kinds.get(phone_id, ())))
        )
    return out


def ledgers(
    s: Session, account_ids: Sequence[int], at_utc: datetime, lookback: timedelta = LOOKBACK
) -> dict[int, Ledger]:
    """:func:`voiceagent.dialer.ledger.build_ledger` for several accounts in one statement."""
    since = at_utc - lookback
    ids = list(account_ids)
    attempts = select(Attempt.account_id, Attempt.started_at, literal(0).label("talk")).where(
        Attempt.account_id.in_(ids), Attempt.started_at >= since, Attempt.started_at <= at_utc
    )
    talks = select(Call.account_id, Call.started_at, literal(1).label("talk")).where(
        Call.account_id.in_(ids),
        Call.right_party.is_(True),
        Call.started_at >= since,
        Call.started_at <= at_utc,
    )
    tried: dict[int, list[datetime]] = {}
    talked: dict[int, list[datetime]] = {}
    rows: Any = s.connection().execute(union_all(attempts, talks))
    for account_id, started_at, talk in rows:
        (talked if talk else tried).setdefault(int(account_id), []).append(started_at)
    return {
        a: Ledger(
            attempts=tuple(Contact(t, "voice") for t in sorted(tried.get(a, ()))),
            conversations=tuple(sorted(talked.get(a, ()))),
        )
        for a in ids
    }
