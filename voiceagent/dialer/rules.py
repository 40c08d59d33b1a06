"""Compliance rules: may this person be called about this debt at this moment, and if not, when?

Pure evaluation: no I/O and no clock (``at_utc`` is passed in), so the dialer can call
:func:`check` for many accounts, once when it reserves a call and again at connect time. Packs
(``voiceagent/dialer/packs/*.yaml``, loaded by :mod:`voiceagent.dialer.packs`) are compiled
into the rule objects below. Windows are half-open in local time: ``07:00-19:00`` allows
18:59:59 and refuses 19:00:00.

The search for the next allowed moment jumps from one rule's earliest possible opening to the
next (a window's start, the midnight after a holiday, the day a capped attempt drops out of
its period) until every rule allows, within :data:`HORIZON`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import holidays

HORIZON = timedelta(days=60)
"""How far ahead :func:`check` looks for the next allowed moment before giving up (``None``)."""
FLAGS = ("cease", "attorney", "dispute", "wrong_party")
"""Restriction flags a pack may name: stop contact, represented by an attorney, disputed, not
the debtor's number."""
CHANNELS = ("voice", "sms", "whatsapp", "email", "visit")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_STEPS = 500

Span = tuple[int, int]
"""Seconds since local midnight: ``[start, end)``, end at most 86400."""
Week = tuple[tuple[Span, ...], ...]
"""Seven lists of spans, Monday first."""


@dataclass(frozen=True, slots=True)
class Citation:
    """Where a rule comes from: the law (and article) and the source it was checked against."""

    law: str
    source: str
    article: str | None = None

    def __str__(self) -> str:
        law = f"{self.law}, {self.article}" if self.article else self.law
        return f"{law} ({self.source})"


@dataclass(frozen=True, slots=True)
class Contact:
    """One placed attempt (answered or not) through a channel."""

    at_utc: datetime
    channel: str = "voice"


SCOPES = ("debt", "person")
"""Whose contacts a counting rule counts: this debt's, or the person's about all their debts
with the creditor (accounts with the same document number under the creditor's portfolios)."""


def merge_ledgers(ledgers: list[Ledger]) -> Ledger:
    """One ledger holding the contacts of several (a person's debts)."""
    if len(ledgers) == 1:
        return ledgers[0]
    return Ledger(
        attempts=tuple(sorted((a for x in ledgers for a in x.attempts), key=lambda c: c.at_utc)),
        conversations=tuple(sorted(c for x in ledgers for c in x.conversations)),
    )


@dataclass(frozen=True, slots=True)
class Ledger:
    """The contact history of one person about one debt (filled from the CRM by the dialer)."""

    attempts: tuple[Contact, ...] = ()
    """Every placed attempt, answered or not, oldest first."""
    conversations: tuple[datetime, ...] = ()
    """UTC moments of conversations with the right party, oldest first."""


@dataclass(frozen=True, slots=True)
class StatedWindow:
    """A time the debtor said is inconvenient, in local time (e.g. weekday mornings)."""

    days: frozenset[int]
    """Weekdays, 0 = Monday."""
    start_s: int
    """Seconds since local midnight."""
    end_s: int
    """Seconds since local midnight (exclusive)."""


@dataclass(frozen=True, slots=True)
class Flags:
    """What the CRM knows about the person and the number: restrictions, consents, preferences."""

    restrictions: frozenset[str] = frozenset()
    """Names from :data:`FLAGS` in force."""
    authorized_channels: frozenset[str] = frozenset()
    """Channels the debtor authorized (``voice`` when the number has consent)."""
    phone_type: str = "unknown"
    """``mobile``, ``fixed`` or ``unknown``: type of the number to dial."""
    at_work: bool = False
    """The number is the debtor's workplace."""
    no_calls_at_work: bool = False
    """The debtor said not to be called at work."""
    inconvenient: tuple[StatedWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a call may be placed now, which rule forbids it and when it next may be."""

    allowed: bool
    rule: str | None
    """Rule id and citation of the first rule that forbids the call."""
    next_allowed_at: datetime | None
    """Earliest moment (UTC) every rule allows; the checked moment itself when allowed; ``None``
    when never or not within :data:`HORIZON`."""
    rule_id: str | None = None
    reason: str | None = None
    """Why the rule forbids it, in words."""

    def as_json(self, zone: ZoneInfo | None = None) -> dict[str, Any]:
        """``{"allowed", "rule", "next_allowed_at"}`` with the time in ``zone`` (default UTC)."""
        at = self.next_allowed_at
        return {
            "allowed": self.allowed,
            "rule": self.rule,
            "next_allowed_at": at.astimezone(zone or UTC).isoformat() if at else None,
        }


@dataclass(frozen=True, slots=True)
class Block:
    """A rule forbids the call: until when at least (``None``: until a person lifts it)."""

    until: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a rule looks at besides the moment."""

    zones: tuple[ZoneInfo, ...]
    subdivision: str | None
    ledger: Ledger
    flags: Flags
    channel: str
    country: str
    person_ledger: Ledger | None = None
    """The person's contacts about all their debts with the creditor (``None``: this debt's)."""

    def history(self, scope: str) -> Ledger:
        """The ledger a rule of that scope counts: ``debt`` (this debt) or ``person``."""
        if scope == "person" and self.person_ledger is not None:
            return self.person_ledger
        return self.ledger


class Rule(Protocol):
    """A compiled rule of a pack."""

    @property
    def id(self) -> str:
        """``<jurisdiction>.<name>``, e.g. ``co.hours``."""
        ...

    @property
    def cite(self) -> Citation:
        """Where the rule comes from."""
        ...

    @property
    def calendar(self) -> bool:
        """Depends only on the moment and the place (hours, holidays), not on the person."""
        ...

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """``None`` when the rule allows a call at ``at``, else a lower bound of the reopening."""
        ...


@dataclass(frozen=True, slots=True)
class RequiredPrompt:
    """A dialplan ``compliance`` prompt the jurisdiction requires (``collector_disclosure``)."""

    prompt: str
    cite: Citation


@dataclass(frozen=True)
class Pack:
    """The rules of one jurisdiction, with stricter rules added per subdivision (state)."""

    id: str
    name: str
    country: str
    """ISO country code for the ``holidays`` library."""
    default_timezone: str
    rules: tuple[Rule, ...]
    overrides: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    required_prompts: tuple[RequiredPrompt, ...] = ()
    legal_review: bool = False
    """The rules are a conservative default awaiting review by a lawyer."""
    file: str = ""

    @property
    def prompt_keys(self) -> tuple[str, ...]:
        """Names of the ``compliance`` prompts a dialplan used with this pack must set."""
        return tuple(p.prompt for p in self.required_prompts)

    def rules_for(self, subdivision: str | None) -> tuple[Rule, ...]:
        """The base rules plus those the subdivision adds."""
        extra = self.overrides.get(subdivision.upper(), ()) if subdivision else ()
        return self.rules + extra if extra else self.rules

    def calendar_only(self) -> Pack:
        """The same pack with only its hour and holiday rules (no person, no ledger)."""
        keep = tuple(r for r in self.rules if r.calendar)
        over = {k: tuple(r for r in v if r.calendar) for k, v in self.overrides.items()}
        return replace(self, rules=keep, overrides=over)


def check(
    pack: Pack,
    at_utc: datetime,
    zones: list[str] | tuple[str, ...],
    subdivision: str | None,
    ledger: Ledger,
    flags: Flags,
    *,
    person_ledger: Ledger | None = None,
    channel: str = "voice",
    horizon: timedelta = HORIZON,
) -> Decision:
    """Decide whether a call at ``at_utc`` is allowed in every candidate time zone.

    Call it when reserving a call and again, with the connect time, before the call connects.

    Args:
        pack: The jurisdiction's rules.
        at_utc: The moment of the call (timezone-aware).
        zones: Candidate IANA zones of the debtor (number and address); empty: the pack's default.
        subdivision: State or province code (``MA``, ``AL``), for overrides and holidays.
        ledger: Past attempts and conversations about this debt with this person.
        flags: Restrictions, consents and stated preferences.
        person_ledger: Those about all the person's debts with the creditor, for rules scoped
            to the person (Colombia's once a day, Chile's once a week); default ``ledger``.
        channel: The channel of the contact (``voice``).
        horizon: How far ahead to search for the next allowed moment.
    """
    if at_utc.tzinfo is None:
        raise ValueError("at_utc must be timezone-aware")
    at_utc = at_utc.astimezone(UTC)
    ctx = Context(
        zones=tuple(zone(z) for z in (zones or (pack.default_timezone,))),
        subdivision=subdivision.upper() if subdivision else None,
        ledger=ledger,
        flags=flags,
        channel=channel,
        country=pack.country,
        person_ledger=person_ledger,
    )
    rules = pack.rules_for(ctx.subdivision)
    first: tuple[Rule, Block] | None = None
    t, limit = at_utc, at_utc + horizon
    for _ in range(_MAX_STEPS):
        latest: datetime | None = None
        for rule in rules:
            block = rule.blocked(t, ctx)
            if block is None:
                continue
            if first is None:
                first = (rule, block)
            if block.until is None:
                return _refused(first, None)
            until = block.until if block.until > t else t + timedelta(minutes=1)
            latest = until if latest is None or until > latest else latest
        if latest is None:
            return Decision(True, None, t) if first is None else _refused(first, t)
        if latest > limit:
            break
        t = latest
    assert first is not None
    return _refused(first, None)


def _refused(first: tuple[Rule, Block], when: datetime | None) -> Decision:
    rule, block = first
    return Decision(False, f"{rule.id}: {rule.cite}", when, rule.id, block.reason)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """A cached :class:`ZoneInfo` (``KeyError``-free: raises ``ValueError`` for unknown names)."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@lru_cache(maxsize=256)
def holiday_calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    """The ``holidays`` calendar of a country (and subdivision when the library knows it)."""
    known = holidays.list_supported_countries().get(country, [])
    return holidays.country_holidays(country, subdiv=subdivision if subdivision in known else None)


def local_start(day: date, tz: ZoneInfo, seconds: int = 0) -> datetime:
    """UTC moment of a local wall time; a time skipped by DST maps to after the jump."""
    naive = datetime.combine(day, time()) + timedelta(seconds=seconds)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def seconds_of_day(local: datetime) -> float:
    """Seconds since local midnight, with the fraction."""
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def _hhmm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


@lru_cache(maxsize=256)
def describe_week(week: Week) -> str:
    """``mon 07:00-19:00; sat 08:00-15:00`` (days without spans are left out)."""
    parts = []
    for name, spans in zip(WEEKDAYS, week, strict=True):
        if spans:
            parts.append(f"{name} " + ", ".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in spans))
    return "; ".join(parts) or "never"


def intersect_weeks(weeks: list[Week]) -> Week:
    """The spans allowed by every week (the strictest table)."""
    out = list(weeks[0])
    for week in weeks[1:]:
        out = [
            tuple(
                (max(s1, s2), min(e1, e2))
                for s1, e1 in a
                for s2, e2 in b
                if max(s1, s2) < min(e1, e2)
            )
            for a, b in zip(out, week, strict=True)
        ]
    return tuple(out)
