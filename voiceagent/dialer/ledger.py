"""Fill the inputs of :func:`voiceagent.dialer.rules.check` from the CRM tables.

Blocking (SQLAlchemy): async callers run it on the ``db_pool``. Every placed attempt counts,
answered or not; a conversation is a call where the right party was verified, outbound or
inbound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from phonenumbers import timezone as phone_tz
from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from voiceagent.crm import repo
from voiceagent.crm.models import Account, Attempt, Call, Phone, Portfolio
from voiceagent.dialer.rules import Contact, Decision, Flags, Ledger, Pack, check, merge_ledgers

LOOKBACK = timedelta(days=60)
"""How far back the ledger reads; longer than any cap period or quiet period in the packs."""
RESTRICTION_FLAGS = {"stop_contact": "cease", "dispute": "dispute", "wrong_number": "wrong_party"}
"""CRM restriction kinds -> rule flags (``attorney`` has no CRM kind yet)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Who would be called, where and through which number: the rule inputs besides the moment."""

    account_id: int
    phone_id: int | None
    jurisdiction: str | None
    """Country of the account (``extra.country``) or of the number, ``None`` if unknown."""
    subdivision: str | None
    zones: tuple[str, ...]
    ledger: Ledger
    """This debt's contacts."""
    flags: Flags
    person_ledger: Ledger | None = None
    """The person's contacts about all their debts with the creditor (``None``: ``ledger``)."""

    def check(self, pack: Pack, at_utc: datetime) -> Decision:
        """:func:`voiceagent.dialer.rules.check` of a call to this subject at ``at_utc``."""
        return check(
            pack,
            at_utc,
            self.zones,
            self.subdivision,
            self.ledger,
            self.flags,
            person_ledger=self.person_ledger,
        )


_OWNER = select(Account.id, Portfolio.creditor_id, Account.document_number).join(
    Portfolio, Portfolio.id == Account.portfolio_id
)
_OWNERS = _OWNER.where(Account.id.in_(bindparam("ids", expanding=True)))
_PEOPLE = _OWNER.where(
    Portfolio.creditor_id.in_(bindparam("creditors", expanding=True)),
    Account.document_number.in_(bindparam("docs", expanding=True)),
)
"""Built once: building a statement costs more than running it (see ``queue_batch``)."""


def same_person(s: Session, account_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """Each account's person: the accounts with its document number under its creditor.

    The creditor's portfolios are searched (a person's debts with one creditor may sit in
    several); an account without a document number is a person of its own. Uses the
    ``(portfolio_id, document_number)`` index.
    """
    ids = list(account_ids)
    keyed = {a: (c, d) for a, c, d in s.execute(_OWNERS, {"ids": ids}) if d}
    out: dict[int, tuple[int, ...]] = {a: (a,) for a in ids}
    if not keyed:
        return out
    people: dict[tuple[int, str], list[int]] = {}
    found = s.execute(
        _PEOPLE,
        {
            "creditors": sorted({c for c, _ in keyed.values()}),
            "docs": sorted({d for _, d in keyed.values()}),
        },
    )
    for a, c, d in found:
        people.setdefault((c, d or ""), []).append(a)
    for a, key in keyed.items():
        out[a] = tuple(sorted(people.get(key, [a])))
    return out


def build_ledger(
    s: Session,
    account_id: int,
    at_utc: datetime,
    lookback: timedelta = LOOKBACK,
    exclude_attempt_id: int | None = None,
) -> Ledger:
    """Attempts and right-party conversations of an account in ``[at - lookback, at]``.

    Args:
        s: An open session.
        account_id: The account (the person and the debt).
        at_utc: The moment being checked.
        lookback: How far back to read.
        exclude_attempt_id: The attempt being checked at connect time (it was reserved already).
    """
    since = at_utc - lookback
    query = select(Attempt.started_at).where(
        Attempt.account_id == account_id,
        Attempt.started_at >= since,
        Attempt.started_at <= at_utc,
    )
    if exclude_attempt_id is not None:
        query = query.where(Attempt.id != exclude_attempt_id)
    attempts = sorted(s.scalars(query))
    talks = select(Call.started_at).where(
        Call.account_id == account_id,
        Call.right_party.is_(True),
        Call.started_at >= since,
        Call.started_at <= at_utc,
    )
    if exclude_attempt_id is not None:
        talks = talks.where(or_(Call.attempt_id.is_(None), Call.attempt_id != exclude_attempt_id))
    return Ledger(
        attempts=tuple(Contact(a, "voice") for a in attempts),
        conversations=tuple(sorted(s.scalars(talks))),
    )


def phone_zones(e164: str) -> tuple[str, ...]:
    """Time zones the numbering plan gives a number (empty when unknown)."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in phone_tz.time_zones_for_number(number) if z != "Etc/Unknown")


def subject(
    s: Session,
    account_id: int,
    at_utc: datetime,
    phone_id: int | None = None,
    exclude_attempt_id: int | None = None,
) -> Subject:
    """The rule inputs for calling an account (at a phone; default its first by priority).

    Zones are the account's address zone plus the number's zones; the subdivision and the
    country come from the account's extra columns (``subdivision``/``state``, ``country``),
    the country failing that from the number.
    """
    account = s.get(Account, account_id)
    if account is None:
        raise LookupError(f"no account {account_id}")
    query = select(Phone).where(Phone.account_id == account_id)
    if phone_id is not None:
        query = query.where(Phone.id == phone_id)
    phone = s.scalars(query.order_by(Phone.priority, Phone.id)).first()
    if phone_id is not None and phone is None:
        raise LookupError(f"no phone {phone_id} on account {account_id}")
    zones = [account.timezone] if account.timezone else []
    for z in phone_zones(phone.e164) if phone else ():
        if z not in zones:
            zones.append(z)
    extra = account.extra or {}
    country = extra.get("country") or (
        phonenumbers.region_code_for_number(phonenumbers.parse(phone.e164)) if phone else None
    )
    subdivision = extra.get("subdivision") or extra.get("state")
    kinds = {x.kind for x in repo.restrictions(s, account_id, phone.id if phone else None)}
    flags = Flags(
        restrictions=frozenset(RESTRICTION_FLAGS[k] for k in kinds if k in RESTRICTION_FLAGS),
        authorized_channels=frozenset({"voice"})
        if phone is not None and phone.consent
        else frozenset(),
        phone_type=phone.type if phone else "unknown",
    )
    return Subject(
        account_id=account_id,
        phone_id=phone.id if phone else None,
        jurisdiction=str(country).upper() if country else None,
        subdivision=str(subdivision).upper() if subdivision else None,
        zones=tuple(zones),
        ledger=build_ledger(s, account_id, at_utc, exclude_attempt_id=exclude_attempt_id),
        flags=flags,
        person_ledger=merge_ledgers(
            [
                build_ledger(s, a, at_utc, exclude_attempt_id=exclude_attempt_id)
                for a in same_person(s, [account_id])[account_id]
            ]
        ),
    )
