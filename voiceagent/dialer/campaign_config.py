"""A campaign's configuration: dialplan, schedule and waves, channels, retries, pacing.

:class:`CampaignConfig` is what an operator sets; it is stored in the campaign row's columns
(``schedule`` holds the schedule and the waves, ``retry_policy`` the retries, ``pacing`` the
pacing) and read back with :func:`config_of`. :mod:`voiceagent.dialer.campaigns` applies it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voiceagent.crm.models import Campaign
from voiceagent.dialer import rules as r

AUTO_DIALPLAN = "auto"
"""``dialplan_id`` of a campaign whose dialplan is routed per account (``routing.yaml``)."""
RETRY_RESULTS = ("busy", "no_answer", "failed", "machine", "abandoned")
"""Attempt results a retry policy may retry; any other result ends the account's campaign."""
ABANDON_WINDOW = timedelta(days=30)
"""Period over which a campaign's abandonment rate is measured (TSR, research section 3.2)."""
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RetryResult = Literal["busy", "no_answer", "failed", "machine", "abandoned"]


def hhmm(text: str) -> int:
    """Seconds of the day of ``HH:MM`` (``24:00`` allowed); ``ValueError`` if malformed."""
    hours, _, minutes = text.partition(":")
    value = int(hours) * 3600 + int(minutes) * 60
    if not (0 <= int(minutes) < 60 and 0 <= value <= 86400):
        raise ValueError(f"bad time {text!r}")
    return value


def span(text: str) -> tuple[int, int]:
    """``HH:MM-HH:MM`` as (start, end) seconds of the day; ``ValueError`` if malformed."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
    low, high = hhmm(start), hhmm(end)
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
        span(value)
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
        span(value)
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
