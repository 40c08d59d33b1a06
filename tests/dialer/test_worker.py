"""The dialer loop and pacing: channels respected, pause/stop, connect-time abort, two workers."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.dialer.fixtures_dialer import (
    WED_10_BOGOTA,
    FakeClock,
    FakePhone,
    cmp_sessions,
    seed,
    started,
)
from voiceagent.crm.db import make_engine
from voiceagent.crm.models import ActiveDial, Attempt, CampaignEntry
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer.campaigns import PacingConfig
from voiceagent.dialer.pacing import AnswerStats, Pacer, expected_overflow, predictive
from voiceagent.dialer.worker import DialerWorker

BOGOTA = ZoneInfo("America/Bogota")
ONE_TRY = {
    "busy": {"delay_s": 1, "max_attempts": 1},
    "no_answer": {"delay_s": 1, "max_attempts": 1},
}
N_ACCOUNTS = 3_000


class RealtimeClock:
    """Wall time elapsed since creation, added to a fixed start inside the calling window."""

    def __init__(self, start: datetime = WED_10_BOGOTA, speed: float = 1.0) -> None:
        self.start, self.t0, self.speed = start, time.monotonic(), speed

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.t0) * self.speed)


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


# -- pacing ---------------------------------------------------------------------------------


def test_progressive_dials_one_call_per_free_seat_within_the_channels() -> None:
    pacer = Pacer(PacingConfig())
    many = AnswerStats(dials=1000, answers=300, live=250)
    assert pacer.dials(seats=10, channels_free=10, active=3, ringing=2, stats=many) == 5
    assert pacer.dials(seats=10, channels_free=2, active=3, ringing=2, stats=many) == 2
    assert pacer.dials(seats=4, channels_free=10, active=3, ringing=2, stats=many) == 0


def test_expected_overflow_matches_a_direct_binomial_sum() -> None:
    from math import comb

    n, q, free = 12, 0.35, 3
    direct = sum(
        (k - free) * comb(n, k) * q**k * (1 - q) ** (n - k) for k in range(free + 1, n + 1)
    )
    assert expected_overflow(n, q, free) == pytest.approx(direct, rel=1e-9)
    assert expected_overflow(3, 0.9, 3) == 0.0


def test_predictive_overdials_at_low_answer_rates_under_the_abandon_guard() -> None:
    assert predictive(10, 0, 0, 0.2, max_ratio=3.0, target=0.01) == 30  # capped by the ratio
    dials = predictive(10, 0, 0, 0.3, max_ratio=3.0, target=0.01)
    assert 10 < dials < 33  # more than progressive, fewer than free / q
    n = dials
    assert expected_overflow(n, 0.3, 10) <= 0.01 * n * 0.3
    assert expected_overflow(n + 1, 0.3, 10) > 0.01 * (n + 1) * 0.3  # the guard is tight
    assert predictive(10, 0, 4, 0.3, max_ratio=3.0, target=0.01) == dials - 4  # ringing count
    assert predictive(10, 10, 0, 0.2, max_ratio=3.0, target=0.01) == 0  # no free seat


def test_predictive_falls_back_to_progressive_over_the_abandon_cap_or_without_samples() -> None:
    pacer = Pacer(PacingConfig(mode="predictive", min_samples=50))
    good = AnswerStats(dials=1000, answers=200, abandoned=1, live=150)
    over = AnswerStats(dials=1000, answers=200, abandoned=5, live=150)  # 3.3 %
    few = AnswerStats(dials=40, answers=8, live=8)
    kw = {"seats": 10, "channels_free": 100, "active": 0, "ringing": 0}
    assert pacer.dials(**kw, stats=good) > 10
    assert pacer.dials(**kw, stats=over) == 10
    assert pacer.dials(**kw, stats=few) == 10
    stats = AnswerStats.from_counts({"answered": 30, "abandoned": 1, "machine": 9, "no_answer": 60})
    assert (stats.dials, stats.answers, stats.live) == (100, 40, 31)


# -- the loop -------------------------------------------------------------------------------


def test_worker_drains_a_campaign_within_its_channels(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    cid = started(sessions, "c", seed(engine, 40), max_channels=3, retry=ONE_TRY)
    results = itertools.cycle(["answered", "busy", "no_answer", "machine"])
    clock = RealtimeClock()
    phone = FakePhone(results, clock=clock)
    worker = DialerWorker(sessions, cid, phone, clock=clock, tick_s=0.01)
    report = asyncio.run(worker.run(until_drained=True))
    assert report.reserved == report.finished == 40
    assert phone.max_in_flight == 3 == report.max_in_flight  # paced to the free channels
    assert report.by_result == {"answered": 10, "busy": 10, "no_answer": 10, "machine": 10}
    with sessions() as s:
        progress = cmp.progress(s, "c")
        assert s.scalar(select(func.count()).select_from(ActiveDial)) == 0
    assert progress.done == 40 and progress.pending == progress.in_progress == 0
    assert progress.done_by_result == report.by_result  # the policy allows one try each


def test_pause_lets_calls_in_flight_finish_and_reserves_nothing_more(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    cid = started(sessions, "c", seed(engine, 30), max_channels=4)
    clock = RealtimeClock()
    phone = FakePhone(delay_s=(0.05, 0.08), clock=clock)

    async def scenario() -> tuple[int, int, int]:
        worker = DialerWorker(sessions, cid, phone, clock=clock, tick_s=0.01)
        task = asyncio.create_task(worker.run())
        await _until(lambda: worker.report.reserved >= 4)
        with sessions.begin() as s:
            cmp.pause(s, "c")
        await _until(lambda: worker.active + worker.ringing == 0)  # in-flight calls end
        paused_reserved, paused_finished = worker.report.reserved, worker.report.finished
        await asyncio.sleep(0.3)
        assert worker.report.reserved == paused_reserved  # nothing new while paused
        with sessions.begin() as s:
            cmp.resume(s, "c")
        await _until(lambda: worker.report.reserved >= paused_reserved + 4)
        with sessions.begin() as s:
            cmp.stop(s, "c")
        report = await asyncio.wait_for(task, 5)
        return paused_reserved, paused_finished, report.finished

    reserved, finished_while_paused, finished = asyncio.run(scenario())
    assert finished_while_paused == reserved  # in-flight calls finished during the pause
    with sessions() as s:
        progress = cmp.progress(s, "c")
        assert s.scalar(select(func.count()).select_from(ActiveDial)) == 0
    assert progress.status == "finished"
    assert progress.in_progress == 0 and progress.done == finished  # stop waited for them
    assert progress.pending == 30 - finished > 0


def test_worker_aborts_a_call_whose_window_closed_before_it_connected(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    reserved_at = datetime(2026, 3, 11, 18, 59, 58, tzinfo=BOGOTA)
    cid = started(sessions, "c", seed(engine, 1), now=reserved_at)
    clock = FakeClock(reserved_at)

    class SlowToAnswer(FakePhone):
        async def __call__(self, reservation):  # type: ignore[no-untyped-def]
            clock.advance(timedelta(seconds=5))  # rings for 5 s: connects at 19:00:03
            return await super().__call__(reservation)

    phone = SlowToAnswer(clock=clock)
    worker = DialerWorker(sessions, cid, phone, clock=clock, tick_s=0.01)

    async def once() -> None:
        task = asyncio.create_task(worker.run())
        await _until(lambda: worker.report.finished >= 1)
        worker.stop()
        await task

    asyncio.run(once())
    assert phone.aborted == 1 and worker.report.by_result == {"aborted": 1}
    with sessions() as s:
        entry = s.scalar(select(CampaignEntry))
        assert entry is not None and entry.status == "pending"
        assert entry.next_at == datetime(2026, 3, 12, 7, 0, tzinfo=BOGOTA)
        assert s.scalar(select(Attempt.result)) == "aborted"


# -- two dialers on one database ------------------------------------------------------------


def _dial_all(
    url: str,
    campaign_id: int,
    name: str,
    seats: int,
    speed: float = 1.0,
    spans: list[tuple[int, float, float]] | None = None,
) -> list[int]:
    """One dialer with its own engine: dial the campaign until nothing is left."""
    engine = make_engine(url)
    clock = RealtimeClock(speed=speed)
    try:
        phone = FakePhone(delay_s=(0.0, 0.003), seed=sum(map(ord, name)), clock=clock, spans=spans)
        worker = DialerWorker(
            cmp_sessions(engine),
            campaign_id,
            phone,
            seats=seats,
            worker=name,
            clock=clock,
            tick_s=0.005,
        )
        return asyncio.run(worker.run(until_drained=True)).attempt_ids
    finally:
        engine.dispose()


def _process_main(url: str, campaign_id: int, name: str, seats: int, out: object) -> None:
    out.put(_dial_all(url, campaign_id, name, seats))  # type: ignore[attr-defined]


def _assert_each_account_dialled_once(
    sessions: sessionmaker[Session], mine: list[list[int]]
) -> None:
    with sessions() as s:
        rows = s.execute(select(Attempt.id, Attempt.account_id, Attempt.result)).all()
        entries = Counter(s.scalars(select(CampaignEntry.status)))
    per_account = Counter(account for _, account, _ in rows)
    assert len(rows) == N_ACCOUNTS and len(per_account) == N_ACCOUNTS
    assert max(per_account.values()) == 1  # no account dialled twice
    assert entries == {"done": N_ACCOUNTS}
    assert all(result == "answered" for _, _, result in rows)
    a, b = (set(ids) for ids in mine)
    assert not a & b and a | b == {i for i, _, _ in rows}  # each attempt placed by one dialer
    assert len(a) > N_ACCOUNTS // 10 and len(b) > N_ACCOUNTS // 10  # both really dialled


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_dialer_processes_on_postgresql_never_dial_an_account_twice(
    backend: str, migrated_url: str
) -> None:
    engine = make_engine(migrated_url)
    sessions = cmp_sessions(engine)
    try:
        cid = started(sessions, "c", seed(engine, N_ACCOUNTS), max_channels=64, retry=ONE_TRY)
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [
            ctx.Process(target=_process_main, args=(migrated_url, cid, f"p{i}", 24, out))
            for i in range(2)
        ]
        for p in procs:
            p.start()
        mine = [out.get(timeout=300) for _ in procs]
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        _assert_each_account_dialled_once(sessions, mine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_two_dialer_threads_on_sqlite_never_dial_an_account_twice(
    backend: str, migrated_url: str
) -> None:
    engine = make_engine(migrated_url)
    sessions = cmp_sessions(engine)
    try:
        cid = started(sessions, "c", seed(engine, N_ACCOUNTS), max_channels=64, retry=ONE_TRY)
        mine: list[list[int]] = [[], []]

        def run(i: int) -> None:
            mine[i] = _dial_all(migrated_url, cid, f"t{i}", 24)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(300)
        _assert_each_account_dialled_once(sessions, mine)
    finally:
        engine.dispose()


def test_dialers_of_two_campaigns_never_call_one_debtor_at_the_same_time(
    engine: Engine, sessions: sessionmaker[Session], migrated_url: str
) -> None:
    """The same 100 debtors in two campaigns, one dialer each: their calls never overlap."""
    list_id = seed(engine, 100)
    ids = [started(sessions, name, list_id, max_channels=16, retry=ONE_TRY) for name in "ab"]
    results: list[list[int]] = [[], []]
    spans: list[tuple[int, float, float]] = []  # both dialers' calls, on one monotonic clock

    def run(i: int) -> None:
        # 100x time: an account busy in the other campaign is due again 0.3 s later.
        results[i] = _dial_all(migrated_url, ids[i], f"w{i}", 16, speed=100.0, spans=spans)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    with sessions() as s:
        rows = s.execute(select(Attempt.account_id, Attempt.campaign_id, Attempt.result)).all()
    assert len(rows) == 200  # each campaign called each debtor once...
    assert Counter((a, c) for a, c, _ in rows) == {(a, c): 1 for a, c, _ in rows}
    assert {r for _, _, r in rows} == {"answered"}
    # ...never at once. The two dialers' fake clocks start apart, so the attempt timestamps
    # cannot tell; the calls' real spans (one monotonic clock, both threads) can.
    assert len(spans) == 200
    calls: dict[int, list[tuple[float, float]]] = {}
    for account, start, end in spans:
        calls.setdefault(account, []).append((start, end))
    for account, (first, second) in ((k, sorted(v)) for k, v in calls.items()):
        assert first[1] <= second[0], f"account {account}: two calls at once"
