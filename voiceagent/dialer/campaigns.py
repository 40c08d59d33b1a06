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
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm.db import write_session
from voiceagent.crm.models import Attempt, CallList, CallListRow, Campaign, CampaignEntry
from voiceagent.crm.types import utcnow
from voiceagent.dialer import rules as r
from voiceagent.dialer.campaign_config import (  # noqa: F401  (re-exported: cmp.CampaignConfig...)
    ABANDON_WINDOW,
    AUTO_DIALPLAN,
    RETRY_RESULTS,
    CampaignConfig,
    Day,
    PacingConfig,
    RetryResult,
    RetryRule,
    Schedule,
    Wave,
    config_of,
    span,
)
from voiceagent.dialog.routing import Routing

ENQUEUE_LINES = 50_000
"""Call-list lines :func:`start_in_batches` queues per transaction (~0.3 s on SQLite)."""


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


def enqueue(
    s: Session, campaign: Campaign, now: datetime, *, lines: tuple[int, int] | None = None
) -> int:
    """Queue the accounts of the campaign's call list not queued yet; return how many.

    One ``INSERT ... SELECT``: fast on a million rows and safe to repeat.

    Args:
        s: The session (its transaction).
        campaign: The campaign.
        now: When the entries fall due.
        lines: Only the list's lines ``first..last`` (inclusive).
    """
    rows = select(CallListRow.account_id).where(
        CallListRow.call_list_id == campaign.call_list_id, CallListRow.account_id.is_not(None)
    )
    if lines is not None:
        rows = rows.where(CallListRow.line_no.between(*lines))
    accounts = rows.distinct().subquery()
    queued = (
        select(CampaignEntry.id)
        .where(
            CampaignEntry.campaign_id == campaign.id,
            CampaignEntry.account_id == accounts.c.account_id,
        )
        .exists()
    )
    source = select(
        literal(campaign.id),
        accounts.c.account_id,
        literal("pending"),
        literal(campaign.priority),
        literal(now, type_=CampaignEntry.__table__.c.next_at.type),
        literal(0),
        literal(now, type_=CampaignEntry.__table__.c.updated_at.type),
    ).where(~queued)
    columns = ["campaign_id", "account_id", "status", "priority", "next_at", "attempts"]
    stmt = insert(CampaignEntry).from_select([*columns, "updated_at"], source)
    result: Any = s.execute(stmt)
    return int(result.rowcount or 0)


def start_in_batches(
    sessions: sessionmaker[Session],
    name: str,
    now: datetime | None = None,
    *,
    batch_lines: int = ENQUEUE_LINES,
) -> int:
    """:func:`start`, queueing the call list a transaction per ``batch_lines`` lines; the id.

    A million-line list takes seconds to queue: in one transaction, SQLite's write lock would
    keep a live call from committing a promise for that long. The campaign runs from the
    first batch on (the dialer may reserve while the rest is queued); running ``start`` again
    queues whatever an interruption left out.
    """
    now = now or utcnow()
    with write_session(sessions) as s:
        campaign = start(s, name, now, queue=False)
        campaign_id, list_id = campaign.id, campaign.call_list_id
    after = 0
    while True:
        with write_session(sessions) as s:
            chunk = (
                select(CallListRow.line_no)
                .where(CallListRow.call_list_id == list_id, CallListRow.line_no > after)
                .order_by(CallListRow.line_no)
                .limit(batch_lines)
                .subquery()
            )
            last = s.scalar(select(func.max(chunk.c.line_no)))
            if last is None:
                return campaign_id
            enqueue(s, s.get_one(Campaign, campaign_id), now, lines=(after + 1, last))
        after = last


def _set_status(s: Session, name: str, allowed: tuple[str, ...], status: str) -> Campaign:
    campaign = get(s, name)
    if campaign.status not in allowed:
        raise ValueError(f"campaign {name!r} is {campaign.status}; cannot make it {status}")
    campaign.status, campaign.updated_at = status, utcnow()
    s.flush()
    return campaign


def start(s: Session, name: str, now: datetime | None = None, *, queue: bool = True) -> Campaign:
    """Queue the call list's accounts and let the dialer reserve from them.

    For a big list, :func:`start_in_batches` (``queue=False`` leaves the queueing to it).

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
    if queue:
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
    if r.WEEKDAYS[local.weekday()] not in schedule.days:
        return False
    second = r.seconds_of_day(local)
    low, high = span(schedule.hours)
    if not low <= second < high:
        return False
    if not schedule.waves:
        return True
    first = (started_at or now).astimezone(local.tzinfo).date()
    day = (local.date() - first).days + 1
    for wave in schedule.waves:
        w_low, w_high = span(wave.hours)
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
