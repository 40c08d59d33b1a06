"""Campaign configuration, schedule and waves, retry rules, lifecycle and progress counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.dialer.fixtures_dialer import WED_10_BOGOTA, seed
from voiceagent.crm.models import CallListRow, Campaign, CampaignEntry
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer import queue, results
from voiceagent.dialer.campaigns import CampaignConfig, RetryRule, Schedule, Wave
from voiceagent.dialer.queue import Outcome

BOGOTA = ZoneInfo("America/Bogota")


def _at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment in March 2026, Bogotá time (the 11th is a Wednesday)."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=BOGOTA)


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Schedule(hours="19:00-07:00"),  # ends before it starts
        lambda: Schedule(hours="08:00"),  # not a span
        lambda: Schedule(hours="08:60-09:00"),
        lambda: Schedule(timezone="America/Nowhere"),
        lambda: Schedule(days=["mon", "funday"]),
        lambda: Wave(day=0),
        lambda: Wave(day=1, hours="25:00-26:00"),
        lambda: RetryRule(delay_s=-1, max_attempts=2),
        lambda: RetryRule(delay_s=60, max_attempts=0),
        lambda: CampaignConfig(max_channels=0),
        lambda: CampaignConfig(retry={"answered": {"delay_s": 1, "max_attempts": 2}}),
        lambda: CampaignConfig(pacing={"abandon_cap": 0.05}),  # over the 3 % legal cap
        lambda: CampaignConfig(pacing={"mode": "preview"}),
        lambda: CampaignConfig.model_validate({"dialplan_id": "es-419/late"}),  # unknown field
    ],
)
def test_invalid_configurations_are_refused(build: object) -> None:
    with pytest.raises(ValidationError):
        build()  # type: ignore[operator]


def test_configuration_round_trips_through_the_campaign_row(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    config = CampaignConfig(
        dialplan="es-419/late",
        dialplan_version="3",
        schedule=Schedule(
            timezone="America/Bogota",
            days=["mon", "tue"],
            hours="08:00-18:00",
            waves=[Wave(day=1, hours="09:00-12:00"), Wave(day=2, hours="17:00-19:00")],
        ),
        max_channels=12,
        retry={"busy": RetryRule(delay_s=300, max_attempts=5)},
        priority=2,
        jurisdiction="co",
        pacing={"mode": "predictive", "max_ratio": 2.0},
    )
    with sessions.begin() as s:
        cmp.create(s, "c", seed(engine, 1), config)
    with sessions() as s:
        got = cmp.config_of(cmp.get(s, "c"))
    assert got == config.model_copy(update={"jurisdiction": "CO"})  # the pack id is upper-cased


# -- schedule and waves ---------------------------------------------------------------------


def test_schedule_days_and_hours_are_half_open_in_the_campaign_zone() -> None:
    schedule = Schedule(
        timezone="America/Bogota", days=["mon", "tue", "wed", "thu", "fri"], hours="08:00-18:00"
    )
    assert not cmp.dialing_open(schedule, None, _at(11, 7, 59, 59))
    assert cmp.dialing_open(schedule, None, _at(11, 8))
    assert cmp.dialing_open(schedule, None, _at(11, 17, 59, 59))
    assert not cmp.dialing_open(schedule, None, _at(11, 18))
    assert not cmp.dialing_open(schedule, None, _at(14, 10))  # Saturday
    # The same instant read in UTC: 13:00 UTC is 08:00 in Bogotá.
    assert cmp.dialing_open(schedule, None, datetime(2026, 3, 11, 13, 0, tzinfo=UTC))
    assert not cmp.dialing_open(schedule, None, datetime(2026, 3, 11, 12, 59, tzinfo=UTC))


def test_waves_count_days_from_the_local_start_date() -> None:
    schedule = Schedule(
        timezone="America/Bogota",
        waves=[Wave(day=1, hours="09:00-12:00"), Wave(day=2, hours="17:00-20:00")],
    )
    # Started Wednesday 21:00 in Bogotá, which is already Thursday in UTC: day 1 is Wednesday.
    started = datetime(2026, 3, 12, 2, 0, tzinfo=UTC)
    assert cmp.dialing_open(schedule, started, _at(11, 9))  # day 1 morning
    assert not cmp.dialing_open(schedule, started, _at(11, 12))  # the wave's end is excluded
    assert not cmp.dialing_open(schedule, started, _at(11, 17, 30))  # day 1 has no evening
    assert not cmp.dialing_open(schedule, started, _at(12, 10))  # day 2 has no morning
    assert cmp.dialing_open(schedule, started, _at(12, 17, 30))  # day 2 evening
    assert not cmp.dialing_open(schedule, started, _at(13, 17, 30))  # day 3: no wave at all


# -- retry rules ----------------------------------------------------------------------------


def test_next_due_follows_the_rule_of_the_result_until_its_attempts_run_out() -> None:
    config = CampaignConfig(
        retry={
            "busy": RetryRule(delay_s=600, max_attempts=2),
            "no_answer": RetryRule(delay_s=3600, max_attempts=3),
        }
    )
    now = WED_10_BOGOTA
    assert cmp.next_due(config, "busy", 1, now) == now + timedelta(seconds=600)
    assert cmp.next_due(config, "busy", 2, now) is None
    assert cmp.next_due(config, "no_answer", 2, now) == now + timedelta(hours=1)
    assert cmp.next_due(config, "no_answer", 3, now) is None
    assert cmp.next_due(config, "machine", 1, now) is None  # not in this policy: done
    for final in ("answered", "rejected", "interrupted"):
        assert cmp.next_due(config, final, 1, now) is None
    default = CampaignConfig()  # the default policy retries every retryable result
    assert cmp.next_due(default, "no_answer", 1, now) == now + timedelta(hours=4)
    assert cmp.next_due(default, "failed", 3, now) is None


# -- lifecycle ------------------------------------------------------------------------------


def _status(sessions: sessionmaker[Session], name: str) -> str:
    with sessions() as s:
        return cmp.get(s, name).status


def _apply(sessions: sessionmaker[Session], action: str, name: str = "c") -> Campaign:
    with sessions.begin() as s:
        campaign: Campaign = getattr(cmp, action)(s, name)
        return campaign


def test_start_pause_resume_stop_and_the_illegal_transitions(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 7)
    with sessions.begin() as s:
        cmp.create(s, "c", list_id, CampaignConfig(jurisdiction="CO"))
    for action in ("pause", "resume"):  # a draft was never started
        with pytest.raises(ValueError, match="is draft"):
            _apply(sessions, action)
    assert _status(sessions, "c") == "draft"
    with sessions.begin() as s:
        campaign = cmp.start(s, "c", WED_10_BOGOTA)
        assert campaign.status == "running" and campaign.started_at == WED_10_BOGOTA
    with sessions.begin() as s:  # starting again queues nothing twice, keeps the first start
        again = cmp.start(s, "c", WED_10_BOGOTA + timedelta(days=1))
        assert again.started_at == WED_10_BOGOTA
    with sessions() as s:
        queued = s.scalar(select(func.count()).select_from(CampaignEntry))
    assert queued == 7
    assert _apply(sessions, "pause").status == "paused"
    assert _apply(sessions, "pause").status == "paused"  # idempotent
    assert _apply(sessions, "resume").status == "running"
    assert _apply(sessions, "stop").status == "finished"
    for action in ("start", "pause", "resume"):
        with pytest.raises(ValueError, match="is finished"):
            _apply(sessions, action)
    assert _status(sessions, "c") == "finished"
    with pytest.raises(LookupError, match="no campaign 'nope'"):
        _apply(sessions, "start", "nope")


def test_a_paused_campaign_reserves_nothing(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 3)
    with sessions.begin() as s:
        campaign_id = cmp.create(s, "c", list_id, CampaignConfig(jurisdiction="CO")).id
        cmp.start(s, "c", WED_10_BOGOTA)
    _apply(sessions, "pause")
    assert queue.reserve(sessions, campaign_id, 3, worker="t:1", now=WED_10_BOGOTA) == []
    _apply(sessions, "resume")
    assert len(queue.reserve(sessions, campaign_id, 3, worker="t:1", now=WED_10_BOGOTA)) == 3


# -- progress -------------------------------------------------------------------------------


def test_progress_counts_accounts_by_state_and_attempts_by_result(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    one_try = {k: {"delay_s": 60, "max_attempts": 1} for k in ("busy", "abandoned")}
    list_id = seed(engine, 6)
    with sessions.begin() as s:
        cmp.create(s, "c", list_id, CampaignConfig(jurisdiction="CO", retry=one_try))
        campaign_id = cmp.start(s, "c", WED_10_BOGOTA).id
        fresh = cmp.progress(s, "c", WED_10_BOGOTA)
    assert (fresh.pending, fresh.in_progress, fresh.done, fresh.attempts) == (6, 0, 0, 0)
    answered, busy, abandoned, ringing = queue.reserve(
        sessions, campaign_id, 4, worker="t:1", now=WED_10_BOGOTA
    )
    now = WED_10_BOGOTA
    results.finish(sessions, answered, Outcome("answered", 200, now), now)
    results.finish(sessions, busy, Outcome("busy", 486), now)
    results.finish(sessions, abandoned, Outcome("abandoned", 200, now), now)
    with sessions() as s:
        got = cmp.progress(s, "c", now).as_json()
    assert got == {
        "campaign": "c",
        "status": "running",
        "accounts": {
            "pending": 2,
            "in_progress": 1,
            "done": 3,
            "done_by_result": {"abandoned": 1, "answered": 1, "busy": 1},
        },
        "attempts": 4,
        "attempts_by_result": {"abandoned": 1, "answered": 1, "busy": 1, "in_progress": 1},
        "abandon_rate_30d": 0.5,  # abandoned / (answered + abandoned)
    }
    assert ringing.account_id not in {answered.account_id, busy.account_id}
    with sessions() as s:  # attempts older than 30 days leave the abandon rate
        assert cmp.progress(s, "c", now + timedelta(days=31)).abandon_rate_30d == 0.0


def test_start_in_batches_queues_the_whole_list_a_batch_at_a_time(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    list_id = seed(engine, 25)
    with sessions.begin() as s:
        s.add(CallListRow(call_list_id=list_id, line_no=100, raw={}, account_id=None, error="x"))
        cmp.create(s, "c", list_id, cmp.CampaignConfig(jurisdiction="CO"))
    commits: list[int] = []

    def count_commits(conn: Any) -> None:
        commits.append(1)

    event.listen(engine, "commit", count_commits)
    try:
        cid = cmp.start_in_batches(sessions, "c", WED_10_BOGOTA, batch_lines=10)
    finally:
        event.remove(engine, "commit", count_commits)
    with sessions() as s:
        entries = s.scalars(select(CampaignEntry).where(CampaignEntry.campaign_id == cid)).all()
        assert len(entries) == 25 and len({e.account_id for e in entries}) == 25
        assert cmp.get(s, "c").status == "running"
    assert len(commits) == 1 + 3 + 1  # the status, three batches of lines, the empty probe
    again = cmp.start_in_batches(sessions, "c", WED_10_BOGOTA, batch_lines=10)  # idempotent
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CampaignEntry)) == 25 and again == cid
