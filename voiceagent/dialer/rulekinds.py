"""The kinds of rule a pack can hold: hours, holidays, caps, quiet periods, flags, channels.

Each ``blocked`` is pure: it returns ``None`` when the rule allows a call at the moment, else a
:class:`~voiceagent.dialer.rules.Block` whose ``until`` is a lower bound of the rule's next
opening (``None``: until a person lifts a flag).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from voiceagent.dialer.rules import (
    Block,
    Citation,
    Context,
    Ledger,
    Week,
    describe_week,
    holiday_calendar,
    local_start,
    seconds_of_day,
)


@dataclass(frozen=True, slots=True)
class Hours:
    """Allowed local hours per weekday; per-subdivision tables, the strictest one by default."""

    id: str
    cite: Citation
    default: Week
    """The pack's table, or when it has none the strictest of the subdivision tables."""
    by_subdivision: Mapping[str, Week] = field(default_factory=dict)
    calendar: bool = True

    def table(self, subdivision: str | None) -> Week:
        """The table for a subdivision: its own, else the default."""
        if subdivision and subdivision in self.by_subdivision:
            return self.by_subdivision[subdivision]
        return self.default

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """Refuse outside the day's spans; next opening is the next span start."""
        week = self.table(ctx.subdivision)
        latest: datetime | None = None
        reason = ""
        for tz in ctx.zones:
            local = at.astimezone(tz)
            sec = seconds_of_day(local)
            if any(s <= sec < e for s, e in week[local.weekday()]):
                continue
            nxt = _next_open(week, local.date(), sec, tz)
            if nxt is None:
                return Block(None, "no calling hours at all")
            if latest is None or nxt > latest:
                latest = nxt
            reason = (
                f"{local:%a %Y-%m-%d %H:%M} in {tz.key} is outside the allowed hours "
                f"({describe_week(week)})"
            )
        return None if latest is None else Block(latest, reason)


def _next_open(week: Week, day: date, sec: float, tz: ZoneInfo) -> datetime | None:
    for offset in range(8):
        d = day + timedelta(days=offset)
        for start, _end in week[d.weekday()]:
            if offset or start > sec:
                return local_start(d, tz, start)
    return None


@dataclass(frozen=True, slots=True)
class Holidays:
    """No calls on the country's (and subdivision's) public holidays, in any candidate zone."""

    id: str
    cite: Citation
    calendar: bool = True

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """Refuse on a holiday; next opening is the midnight after the run of holidays."""
        cal = holiday_calendar(ctx.country, ctx.subdivision)
        latest: datetime | None = None
        reason = ""
        for tz in ctx.zones:
            day = at.astimezone(tz).date()
            name = cal.get(day)
            if name is None:
                continue
            end = day + timedelta(days=1)
            while end in cal and end - day < timedelta(days=30):
                end += timedelta(days=1)
            nxt = local_start(end, tz)
            latest = nxt if latest is None or nxt > latest else latest
            where = f"{ctx.country}-{ctx.subdivision}" if ctx.subdivision else ctx.country
            reason = f"{day} is a public holiday in {where} ({name})"
        return None if latest is None else Block(latest, reason)


def _day_start(at: datetime, days_back: int, zones: tuple[ZoneInfo, ...]) -> datetime:
    """Earliest local midnight, over the zones, of the day ``days_back`` before ``at``'s day."""
    return min(
        local_start(at.astimezone(tz).date() - timedelta(days=days_back), tz) for tz in zones
    )


def _drops_out(moment: datetime, days: int, zones: tuple[ZoneInfo, ...]) -> datetime:
    """When a past moment leaves a period of ``days`` calendar days (counting its own day)."""
    return max(local_start(moment.astimezone(tz).date() + timedelta(days=days), tz) for tz in zones)


def _conversed(ledger: Ledger, at: datetime) -> bool:
    return bool(ledger.conversations) and ledger.conversations[0] <= at


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``max`` placed attempts in ``days`` consecutive local calendar days (today too)."""

    id: str
    cite: Citation
    max: int
    days: int
    channels: frozenset[str] | None = frozenset({"voice"})
    """Channels whose attempts count; ``None``: all."""
    after_conversation: bool = False
    """Applies only once the debtor has been reached (Colombia: once a day after a contact)."""
    calendar: bool = False
    scope: str = "debt"
    """``debt`` or ``person`` (:data:`voiceagent.dialer.rules.SCOPES`)."""

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """Refuse when the period already holds ``max`` attempts; reopen when one drops out."""
        ledger = ctx.history(self.scope)
        if self.after_conversation and not _conversed(ledger, at):
            return None
        start = _day_start(at, self.days - 1, ctx.zones)
        counted = [
            a.at_utc
            for a in ledger.attempts
            if start <= a.at_utc <= at and (self.channels is None or a.channel in self.channels)
        ]
        if len(counted) < self.max:
            return None
        oldest_to_drop = sorted(counted)[len(counted) - self.max]
        per = "today" if self.days == 1 else f"in {self.days} days"
        return Block(
            _drops_out(oldest_to_drop, self.days, ctx.zones),
            f"{len(counted)} attempt(s) already placed {per} (at most {self.max})",
        )


@dataclass(frozen=True, slots=True)
class QuietAfterConversation:
    """No call within ``days`` local calendar days after a conversation (its day is day 1)."""

    id: str
    cite: Citation
    days: int
    calendar: bool = False
    scope: str = "debt"

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """Refuse until the period after the last conversation ends."""
        past = [c for c in ctx.history(self.scope).conversations if c <= at]
        if not past:
            return None
        until = _drops_out(past[-1], self.days, ctx.zones)
        if until <= at:
            return None
        return Block(until, f"a conversation took place on {past[-1]:%Y-%m-%d %H:%M} UTC")


@dataclass(frozen=True, slots=True)
class SingleChannel:
    """Only one channel within ``days`` local calendar days (optionally once reached)."""

    id: str
    cite: Citation
    days: int
    after_conversation: bool = True
    calendar: bool = False
    scope: str = "debt"

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """Refuse while an attempt through another channel is inside the period."""
        ledger = ctx.history(self.scope)
        if self.after_conversation and not _conversed(ledger, at):
            return None
        start = _day_start(at, self.days - 1, ctx.zones)
        other = [a for a in ledger.attempts if start <= a.at_utc <= at and a.channel != ctx.channel]
        if not other:
            return None
        until = max(_drops_out(a.at_utc, self.days, ctx.zones) for a in other)
        return Block(until, f"already contacted by {other[-1].channel} within {self.days} days")


@dataclass(frozen=True, slots=True)
class Restriction:
    """Flags such as cease or attorney forbid any call until a person lifts them."""

    id: str
    cite: Citation
    flags: frozenset[str]
    calendar: bool = False

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """Refuse for good when a listed flag is set."""
        hit = sorted(self.flags & ctx.flags.restrictions)
        return Block(None, f"restriction in force: {', '.join(hit)}") if hit else None


@dataclass(frozen=True, slots=True)
class AuthorizedChannel:
    """Only channels the debtor authorized (for the listed number types; all when empty)."""

    id: str
    cite: Citation
    phone_types: frozenset[str] = frozenset()
    calendar: bool = False

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """Refuse for good when the channel has no authorization on record."""
        applies = not self.phone_types or ctx.flags.phone_type in self.phone_types | {"unknown"}
        if not applies or ctx.channel in ctx.flags.authorized_channels:
            return None
        return Block(None, f"no authorization on record for the {ctx.channel} channel")


@dataclass(frozen=True, slots=True)
class StatedPreferences:
    """Times and places the debtor said are inconvenient (mornings, at work)."""

    id: str
    cite: Citation
    calendar: bool = False

    def blocked(self, at: datetime, ctx: Context) -> Block | None:
        """Refuse at work when told, and inside a stated window until it ends."""
        flags = ctx.flags
        if flags.at_work and flags.no_calls_at_work:
            return Block(None, "the debtor asked not to be called at work")
        latest: datetime | None = None
        for tz in ctx.zones:
            local = at.astimezone(tz)
            sec = seconds_of_day(local)
            for w in flags.inconvenient:
                if local.weekday() in w.days and w.start_s <= sec < w.end_s:
                    end = local_start(local.date(), tz, w.end_s)
                    latest = end if latest is None or end > latest else latest
        if latest is None:
            return None
        return Block(latest, "the debtor said this time is inconvenient")
