"""Campaign lifecycle: configure, start, pause, resume, stop, and progress.

A campaign dials the accounts of one call list with one dialplan (or one routed per account
by portfolio and days-past-due bucket, :mod:`voiceagent.dialog.routing`), inside its schedule
and waves, with at most ``max_channels`` calls at once, retrying per result as its retry
policy says, under one compliance pack. Its configuration is :class:`CampaignConfig`, stored in
the campaign row's columns (``schedule`` holds the schedule and the waves, ``retry_policy`` the
retries, ``pacing`` the pacing). Starting a campaign queues one :class:`CampaignEntry` per
account of its list; :mod:`voiceagent.dialer.queue` reserves from those entries.

Blocking (SQLAlchemy): async callers run these on the ``db_pool``. Functions take an open
session and leave committing to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session

from voiceagent.crm.models import Attempt, CallList, CallListRow, Campaign, CampaignEntry
from voiceagent.crm.types import utcnow
from voiceagent.dialer import rules as r
from voiceagent.dialog.routing import Routing

AUTO_DIALPLAN = "auto"
"""``dialplan_id`` of a campaign whose dialplan is routed per account (``routing.yaml``)."""
RETRY_RESULTS = ("busy", "no_answer", "failed", "machine", "abandoned")
"""Attempt results a retry policy may retry; any other result ends the account's campaign."""
ABANDON_WINDOW = timedelta(days=30)
"""Period over which a campaign's abandonment rate is measured (TSR, research section 3.2)."""
_WEEKDAYS = r.WEEKDAYS
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RetryResult = Literal["busy", "no_answer", "failed", "machine", "abandoned"]


def _hhmm(text: str) -> int:
    hours, _, minutes = text.partition(":")
    value = int(hours) * 3600 + int(minutes) * 60
    if not (0 <= int(minutes) < 60 and 0 <= value <= 86400):
        raise ValueError(f"bad time {text!r}")
    return value


def _span(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    low, high = _hhmm(start), _hhmm(end)
    if low >= high:
        raise ValueError(f"span {text!r} ends before it starts")
    return low, high


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryRule(_Strict):
    """Retry an attempt that ended with a result after ``delay_s``, up to ``max_attempts``."""

    delay_s: int = Field(ge=0)
    max_attempts: int = Field(ge=1, le=100)
    """Attempts of the account in this campaign after which this result ends it."""


def _default_retry() -> dict[RetryResult, RetryRule]:
    return {
        "busy": RetryRule(delay_s=900, max_attempts=4),
        "no_answer": RetryRule(delay_s=4 * 3600, max_attempts=4),
        "failed": RetryRule(delay_s=1800, max_attempts=3),
        "machine": RetryRule(delay_s=20 * 3600, max_attempts=3),
        "abandoned": RetryRule(delay_s=72 * 3600, max_attempts=4),
    }


class Wave(_Strict):
    """A period the campaign dials in: ``day`` 1 is the start date, ``hours`` local time."""

    day: int = Field(ge=1, le=366)
    hours: str = "00:00-24:00"

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        _span(value)
        return value


class Schedule(_Strict):
    """When the campaign dials, in its own zone (each debtor's legal window applies as well)."""

    timezone: str = "UTC"
    days: list[Day] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    hours: str = "00:00-24:00"
    waves: list[Wave] = []
    """When set, the campaign dials only inside one of these (e.g. day 1 morning, day 2
    evening); otherwise on every scheduled day."""

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        _span(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        r.zone(value)
        return value


class PacingConfig(_Strict):
    """Progressive (one dial per free seat) or predictive under an abandonment cap."""

    mode: Literal["progressive", "predictive"] = "progressive"
    max_ratio: float = Field(default=3.0, ge=1.0, le=10.0)
    """Most dials per free seat in predictive mode."""
    target_abandon: float = Field(default=0.01, ge=0.0, le=0.03)
    """Expected abandonment the predictive guard aims under, per dial batch."""
    abandon_cap: float = Field(default=0.03, ge=0.0, le=0.03)
    """Measured abandonment (abandoned / live answers, 30 days) above which pacing falls back
    to progressive (US TSR 16 CFR 310.4(b)(4), research section 3.2)."""
    min_samples: int = Field(default=50, ge=1)
    """Answers needed before the measured answer rate is trusted."""


class CampaignConfig(_Strict):
    """Everything a campaign is configured with besides its name and call list."""

    dialplan: str = AUTO_DIALPLAN
    """``<locale>/<name>`` (e.g. ``es-419/late``) or ``auto`` to route per account."""
    dialplan_version: str = ""
    schedule: Schedule = Schedule()
    max_channels: int = Field(default=1, ge=1, le=10_000)
    retry: dict[RetryResult, RetryRule] = Field(default_factory=_default_retry)
    priority: int = 0
    """Lower is dialled first (also the entries' default priority)."""
    jurisdiction: str | None = None
    """Compliance pack id (``CO``); ``None``: each account's country."""
    pacing: PacingConfig = PacingConfig()


def config_of(campaign: Campaign) -> CampaignConfig:
    """The configuration stored in a campaign row."""
    return CampaignConfig(
        dialplan=campaign.dialplan_id,
        dialplan_version=campaign.dialplan_version,
        schedule=Schedule.model_validate(campaign.schedule or {}),
        max_channels=campaign.max_channels,
        retry=campaign.retry_policy or _default_retry(),
        priority=campaign.priority,
        jurisdiction=campaign.jurisdiction,
        pacing=PacingConfig.model_validate(campaign.pacing or {}),
    )


def _apply(campaign: Campaign, config: CampaignConfig) -> None:
    campaign.dialplan_id = config.dialplan
    campaign.dialplan_version = config.dialplan_version
    campaign.schedule = config.schedule.model_dump(mode="json")
    campaign.max_channels = config.max_channels
    campaign.retry_policy = {k: v.model_dump() for k, v in config.retry.items()}
    campaign.priority = config.priority
    campaign.jurisdiction = config.jurisdiction.upper() if config.jurisdiction else None
    campaign.pacing = config.pacing.model_dump(mode="json")
    campaign.updated_at = utcnow()


def get(s: Session, name: str) -> Campaign:
    """The campaign called ``name`` (the newest if several); ``LookupError`` if none."""
    found = s.scalars(select(Campaign).where(Campaign.name == name).order_by(Campaign.id.desc()))
    campaign = found.first()
    if campaign is None:
        raise LookupError(f"no campaign {name!r}")
    return campaign


def create(s: Session, name: str, call_list_id: int, config: CampaignConfig) -> Campaign:
    """Create a draft campaign over a call list."""
    now = utcnow()
    campaign = Campaign(
        name=name, call_list_id=call_list_id, status="draft", created_at=now, updated_at=now
    )
    _apply(campaign, config)
    s.add(campaign)
    s.flush()
    return campaign


def configure(s: Session, name: str, config: CampaignConfig) -> Campaign:
    """Replace a campaign's configuration (also while it runs: the dialer rereads it)."""
    campaign = get(s, name)
    _apply(campaign, config)
    s.flush()
    return campaign


def enqueue(s: Session, campaign: Campaign, now: datetime) -> int:
    """Queue every account of the campaign's call list not queued yet; return how many.

    One ``INSERT ... SELECT``: fast on a million rows and safe to repeat.
    """
    accounts = (
        select(CallListRow.account_id)
        .where(CallListRow.call_list_id == campaign.call_list_id)
        .where(CallListRow.account_id.is_not(None))
        .distinct()
        .subquery()
    )
    queued = select(CampaignEntry.account_id).where(CampaignEntry.campaign_id == campaign.id)
    source = select(
        literal(campaign.id),
        accounts.c.account_id,
        literal("pending"),
        literal(campaign.priority),
        literal(now, type_=CampaignEntry.__table__.c.next_at.type),
        literal(0),
        literal(now, type_=CampaignEntry.__table__.c.updated_at.type),
    ).where(accounts.c.account_id.not_in(queued))
    columns = ["campaign_id", "account_id", "status", "priority", "next_at", "attempts"]
    stmt = insert(CampaignEntry).from_select([*columns, "updated_at"], source)
    result: Any = s.execute(stmt)
    return int(result.rowcount or 0)


def _set_status(s: Session, name: str, allowed: tuple[str, ...], status: str) -> Campaign:
    campaign = get(s, name)
    if campaign.status not in allowed:
        raise ValueError(f"campaign {name!r} is {campaign.status}; cannot make it {status}")
    campaign.status, campaign.updated_at = status, utcnow()
    s.flush()
    return campaign


def start(s: Session, name: str, now: datetime | None = None) -> Campaign:
    """Queue the call list's accounts and let the dialer reserve from them.

    Raises:
        ValueError: The campaign cannot run now, or its list is still importing or failed.
    """
    now = now or utcnow()
    call_list = s.get(CallList, get(s, name).call_list_id)
    if call_list is not None and call_list.status != "ready":
        raise ValueError(
            f"call list {call_list.id} ({call_list.filename}) is {call_list.status}; "
            "upload it again to complete it"
            if call_list.status == "failed"
            else f"call list {call_list.id} ({call_list.filename}) is still importing"
        )
    campaign = _set_status(s, name, ("draft", "paused", "running"), "running")
    if campaign.started_at is None:
        campaign.started_at = now
    enqueue(s, campaign, now)
    s.flush()
    return campaign


def pause(s: Session, name: str) -> Campaign:
    """No new reservations; calls in progress finish normally."""
    return _set_status(s, name, ("running", "paused"), "paused")


def resume(s: Session, name: str) -> Campaign:
    """Reserve again after a pause."""
    return _set_status(s, name, ("paused", "running"), "running")


def stop(s: Session, name: str) -> Campaign:
    """End the campaign: no new reservations ever; calls in progress finish normally."""
    return _set_status(s, name, ("draft", "running", "paused", "finished"), "finished")


def dialing_open(schedule: Schedule, started_at: datetime | None, now: datetime) -> bool:
    """Whether the campaign's schedule (and waves, if any) allows dialling at ``now``."""
    local = now.astimezone(r.zone(schedule.timezone))
    if _WEEKDAYS[local.weekday()] not in schedule.days:
        return False
    second = r.seconds_of_day(local)
    low, high = _span(schedule.hours)
    if not low <= second < high:
        return False
    if not schedule.waves:
        return True
    first = (started_at or now).astimezone(local.tzinfo).date()
    day = (local.date() - first).days + 1
    for wave in schedule.waves:
        w_low, w_high = _span(wave.hours)
        if wave.day == day and w_low <= second < w_high:
            return True
    return False


def next_due(config: CampaignConfig, result: str, attempts: int, now: datetime) -> datetime | None:
    """When an account is next due after an attempt ended with ``result``; ``None``: done.

    Args:
        config: The campaign's configuration.
        result: The attempt's result (``busy``, ``no_answer``...).
        attempts: Attempts of the account in the campaign so far, this one included.
        now: When the attempt ended.
    """
    rule = config.retry.get(result)  # type: ignore[call-overload]
    if rule is None or attempts >= rule.max_attempts:
        return None
    return now + timedelta(seconds=rule.delay_s)


def choose_dialplan(
    config: CampaignConfig,
    routing: Routing | None,
    *,
    portfolio: str,
    days_past_due: int,
    locale: str,
) -> str:
    """The dialplan an account gets: the campaign's own, or the first matching route's."""
    if config.dialplan != AUTO_DIALPLAN or routing is None:
        return config.dialplan
    for route in routing.routes:
        low, high = route.days_past_due
        if (
            route.locale == locale
            and low <= days_past_due <= high
            and any(fnmatch(portfolio, p) for p in route.portfolios)
        ):
            return route.dialplan.removesuffix(".yaml")
    return AUTO_DIALPLAN


@dataclass(slots=True)
class Progress:
    """Counts of a campaign's accounts and attempts."""

    name: str
    status: str
    pending: int = 0
    in_progress: int = 0
    done: int = 0
    done_by_result: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    attempts_by_result: dict[str, int] = field(default_factory=dict)
    abandon_rate_30d: float = 0.0
    """Abandoned / (answered + abandoned) over the last 30 days."""

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``campaigns status NAME --json``)."""
        return {
            "campaign": self.name,
            "status": self.status,
            "accounts": {
                "pending": self.pending,
                "in_progress": self.in_progress,
                "done": self.done,
                "done_by_result": dict(sorted(self.done_by_result.items())),
            },
            "attempts": self.attempts,
            "attempts_by_result": dict(sorted(self.attempts_by_result.items())),
            "abandon_rate_30d": round(self.abandon_rate_30d, 4),
        }


def attempt_counts(s: Session, campaign_id: int, since: datetime | None = None) -> dict[str, int]:
    """Attempts of a campaign by result (``in_progress`` for those without one yet)."""
    query = select(Attempt.result, func.count()).where(Attempt.campaign_id == campaign_id)
    if since is not None:
        query = query.where(Attempt.started_at >= since)
    out: dict[str, int] = {}
    for result, count in s.execute(query.group_by(Attempt.result)):
        key = result or "in_progress"
        out[key] = out.get(key, 0) + int(count)
    return out


def abandon_rate(counts: dict[str, int]) -> float:
    """Abandoned calls over live answers (answered + abandoned); 0 with no answers."""
    abandoned = counts.get("abandoned", 0)
    live = counts.get("answered", 0) + abandoned
    return abandoned / live if live else 0.0


def progress(s: Session, name: str, now: datetime | None = None) -> Progress:
    """Accounts pending / in progress / done (by last result) and attempts by result."""
    campaign = get(s, name)
    out = Progress(name=campaign.name, status=campaign.status)
    rows = s.execute(
        select(CampaignEntry.status, CampaignEntry.last_result, func.count())
        .where(CampaignEntry.campaign_id == campaign.id)
        .group_by(CampaignEntry.status, CampaignEntry.last_result)
    )
    for status, result, count in rows:
        setattr(out, status, getattr(out, status) + int(count))
        if status == "done":
            key = result or "none"
            out.done_by_result[key] = out.done_by_result.get(key, 0) + int(count)
    out.attempts_by_result = attempt_counts(s, campaign.id)
    out.attempts = sum(out.attempts_by_result.values())
    since = (now or datetime.now(UTC)) - ABANDON_WINDOW
    out.abandon_rate_30d = abandon_rate(attempt_counts(s, campaign.id, since))
    return out
