"""The dialer loop of one campaign: ask the pacer for free seats, reserve, place, record.

Every database call runs on the ``db_pool``; the loop itself only awaits. Placing a call is
an injected coroutine, ``place_call(reservation) -> Outcome`` (:class:`PlaceCall`): the
telephony and call-session wiring lives elsewhere. When the callee answers, ``place_call``
must ``await reservation.connect_check(answered_at)`` before anything is played; a refusal
(the compliance window closed since the reservation, or no seat is free) means hang up and
return ``Outcome("aborted" | "abandoned")``.

Pausing or stopping the campaign (in the database, from any process) or :meth:`stop` stops new
reservations; calls in flight finish and are recorded before :meth:`run` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm.models import CampaignEntry
from voiceagent.crm.sink import default_worker
from voiceagent.crm.types import utcnow
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer import queue, results
from voiceagent.dialer.besthours import BestHours
from voiceagent.dialer.pacing import AnswerStats, Pacer
from voiceagent.dialer.queue import Outcome, Recheck, Reservation
from voiceagent.dialog.routing import Routing

log = logging.getLogger(__name__)
T = TypeVar("T")
STATS_EVERY = timedelta(seconds=15)
"""How often the measured answer and abandon rates are refreshed (research section 3.4)."""
BEST_HOURS_EVERY = timedelta(hours=1)
"""How often the best-hours model is refitted from the attempts history."""


class PlaceCall(Protocol):
    """Dial a reservation and report how it ended (telephony + call session)."""

    async def __call__(self, reservation: Reservation) -> Outcome:
        """Dial ``reservation.e164``; on answer ``await reservation.connect_check(t)`` first."""
        ...


@dataclass(slots=True)
class WorkerReport:
    """What one :meth:`DialerWorker.run` did."""

    reserved: int = 0
    finished: int = 0
    by_result: dict[str, int] = field(default_factory=dict)
    attempt_ids: list[int] = field(default_factory=list)
    max_in_flight: int = 0


class DialerWorker:
    """Dials one campaign until it is stopped, paused for good, or drained.

    Args:
        sessions: Session factory (its own engine per process).
        campaign_id: The campaign to dial.
        place_call: The injected call placer.
        db_pool: Executor for blocking database work (a private 2-thread pool if ``None``).
        seats: Conversations this process can host (default: the campaign's channels).
        worker: ``host:pid`` name stored with reservations.
        clock: Returns the aware UTC now (tests pass a fake).
        tick_s: Loop period when nothing changes.
        call_timeout_s: Longest a ``place_call`` may take before it counts as ``failed``.
        routing: Routes for campaigns whose dialplan is ``auto``.
        best_hours: Order the calls allowed now by their estimated chance of a right-party
            contact (:mod:`voiceagent.dialer.besthours`), refitted every hour in the
            background; until the first fit, and without it, in due order.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        campaign_id: int,
        place_call: PlaceCall,
        *,
        db_pool: Executor | None = None,
        seats: int | None = None,
        worker: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        tick_s: float = 0.05,
        call_timeout_s: float = 3600.0,
        routing: Routing | None = None,
        best_hours: bool = True,
    ) -> None:
        self.sessions = sessions
        self.campaign_id = campaign_id
        self.place_call = place_call
        self._own_pool = db_pool is None
        self.db_pool: Executor = db_pool or ThreadPoolExecutor(2, thread_name_prefix="db_pool")
        self.seats = seats
        self.worker = worker or default_worker()
        self.clock = clock
        self.tick_s = tick_s
        self.call_timeout_s = call_timeout_s
        self.routing = routing
        self.active = 0
        self.ringing = 0
        self.report = WorkerReport()
        self._stopping = False
        self._wake = asyncio.Event()
        self._stats = AnswerStats()
        self._stats_at: datetime | None = None
        self._seat_limit = seats if seats is not None else 1
        self.best_hours = best_hours
        self.model: BestHours | None = None
        self._model_at: datetime | None = None
        self._fitting: asyncio.Future[BestHours] | None = None

    def stop(self) -> None:
        """No new reservations; :meth:`run` returns once the calls in flight are recorded."""
        self._stopping = True
        self._wake.set()

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.db_pool, partial(fn, *args, **kwargs))

    def _load(self) -> tuple[str, cmp.CampaignConfig, datetime | None, int, int]:
        with self.sessions() as s:
            campaign, busy = results.campaign_load(s, self.campaign_id)
            if campaign is None:
                raise LookupError(f"no campaign {self.campaign_id}")
            pending = s.scalar(
                select(func.count())
                .select_from(CampaignEntry)
                .where(
                    CampaignEntry.campaign_id == self.campaign_id,
                    CampaignEntry.status != "done",
                )
            )
            return (
                campaign.status,
                cmp.config_of(campaign),
                campaign.started_at,
                busy,
                int(pending or 0),
            )

    def _counts(self, since: datetime) -> dict[str, int]:
        with self.sessions() as s:
            return cmp.attempt_counts(s, self.campaign_id, since)

    async def run(self, *, until_drained: bool = False) -> WorkerReport:
        """Dial until stopped or the campaign is finished (or, if asked, has nothing left).

        Args:
            until_drained: Also return once no entry of the campaign is pending or in progress.
        """
        try:
            async with asyncio.TaskGroup() as calls:
                await self._loop(calls, until_drained)
        finally:
            if self._fitting is not None:
                self._fitting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._fitting
            if self._own_pool:
                self.db_pool.shutdown(wait=False)
        return self.report

    async def _loop(self, calls: asyncio.TaskGroup, until_drained: bool) -> None:
        while not self._stopping:
            self._wake.clear()
            status, config, started_at, busy, unfinished = await self._db(self._load)
            in_flight = self.active + self.ringing
            if status == "finished" or (until_drained and unfinished == 0 and not in_flight):
                return
            now = self.clock()
            n = 0
            if status == "running" and cmp.dialing_open(config.schedule, started_at, now):
                n = await self._pace(config, busy, now)
            self._refresh_model(now)
            reserved: list[Reservation] = []
            if n > 0:
                reserved = await self._db(
                    queue.reserve,
                    self.sessions,
                    self.campaign_id,
                    n,
                    worker=self.worker,
                    now=now,
                    routing=self.routing,
                    best_hours=self.model,
                )
            for reservation in reserved:
                self.ringing += 1
                self.report.reserved += 1
                self.report.attempt_ids.append(reservation.attempt_id)
                calls.create_task(self._dial(reservation, config))
            self.report.max_in_flight = max(self.report.max_in_flight, self.active + self.ringing)
            with contextlib.suppress(TimeoutError):  # seats free up in batches meanwhile
                await asyncio.wait_for(self._wake.wait(), self.tick_s)

    def _refresh_model(self, now: datetime) -> None:
        """Take a finished fit; start one in the background when the model is due."""
        if not self.best_hours:
            return
        if self._fitting is not None:
            if not self._fitting.done():
                return
            try:
                self.model = self._fitting.result()
            except Exception:  # ranking is an optimisation: keep dialling in due order
                log.exception("best-hours fit failed; calls stay in due order until the next")
            self._fitting = None
        if self._model_at is None or now - self._model_at >= BEST_HOURS_EVERY:
            self._model_at = now
            self._fitting = asyncio.ensure_future(self._db(self._fit, now))

    def _fit(self, now: datetime) -> BestHours:
        with self.sessions() as s:
            return BestHours.fit(s, now=now)

    async def _pace(self, config: cmp.CampaignConfig, busy: int, now: datetime) -> int:
        if config.pacing.mode == "predictive" and (
            self._stats_at is None or now - self._stats_at >= STATS_EVERY
        ):
            counts = await self._db(self._counts, now - cmp.ABANDON_WINDOW)
            self._stats, self._stats_at = AnswerStats.from_counts(counts), now
        seats = self.seats if self.seats is not None else config.max_channels
        self._seat_limit = seats
        return Pacer(config.pacing).dials(
            seats=seats,
            channels_free=config.max_channels - busy,
            active=self.active,
            ringing=self.ringing,
            stats=self._stats,
        )

    async def _connect_check(self, reservation: Reservation, at: datetime) -> Recheck:
        verdict = await self._db(self._recheck, reservation.attempt_id, at)
        if not verdict.allowed:
            return verdict
        if self.active >= self._seat_limit:
            return Recheck(False, "dialer.no_free_seat", "answered with no free seat")
        self.ringing -= 1
        self.active += 1
        return verdict

    def _recheck(self, attempt_id: int, at: datetime) -> Recheck:
        with self.sessions() as s:
            return results.recheck(s, attempt_id, at)

    async def _dial(self, reservation: Reservation, config: cmp.CampaignConfig) -> None:
        answered = False

        async def check(at: datetime) -> Recheck:
            nonlocal answered
            verdict = await self._connect_check(reservation, at)
            answered = verdict.allowed
            return verdict

        try:
            outcome = await asyncio.wait_for(
                self.place_call(replace(reservation, connect_check=check)), self.call_timeout_s
            )
        except Exception:  # the call failed, not the dialer: record it and go on
            log.exception("place_call failed for attempt %s", reservation.attempt_id)
            outcome = Outcome(result="failed")
        try:
            await self._db(results.finish, self.sessions, reservation, outcome, self.clock())
            self.report.finished += 1
            by_result = self.report.by_result
            by_result[outcome.result] = by_result.get(outcome.result, 0) + 1
        finally:  # the seat stays taken until the account is released in the database
            if answered:
                self.active -= 1
            else:
                self.ringing -= 1
            self._wake.set()
