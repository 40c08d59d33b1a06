"""The dialer orders the calls allowed now by best hours, without starving anyone.

Two portfolios of one campaign: "Mañanas" debtors answered at 10h (Bogotá) and never at 18h,
"Tardes" debtors the other way round (history 100 to 65 days back: in the model's window,
outside the contact ledger's, so no cap is touched).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.dialer.fixtures_dialer import WED_10_BOGOTA, FakeClock, FakePhone, seed, started
from tests.dialer.test_besthours import Row, store
from tests.dialer.test_worker import _until
from voiceagent.crm import repo
from voiceagent.crm.models import Account, Callback, CampaignEntry, Phone
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer import queue, ranking, results
from voiceagent.dialer.besthours import BestHours
from voiceagent.dialer.worker import DialerWorker

W = "test:1"
WED_18_BOGOTA = WED_10_BOGOTA + timedelta(hours=8)


def _two_segments(
    engine: Engine, sessions: sessionmaker[Session]
) -> tuple[int, set[int], set[int]]:
    """A started campaign of 24 accounts alternating between the two portfolios, with history."""
    cid = started(sessions, "c", seed(engine, 24))
    with sessions.begin() as s:
        tardes = repo.portfolio(s, "Banco Andino", "Tardes").id
        ids = list(s.scalars(select(Account.id).order_by(Account.id)))
        evening = set(ids[1::2])
        s.execute(update(Account).where(Account.id.in_(evening)).values(portfolio_id=tardes))
        phones = {a: p for a, p in s.execute(select(Phone.account_id, Phone.id))}
    rows: list[Row] = []
    for day in range(65, 100):
        for account_id in ids:
            for hour in (10, 18):
                at = WED_10_BOGOTA.replace(hour=hour + 5) - timedelta(days=day)
                answers = (hour == 18) == (account_id in evening)
                rows.append((account_id, phones[account_id], at, answers, answers))
    store(sessions, rows)
    return cid, set(ids) - evening, evening


def _fit(sessions: sessionmaker[Session], now: datetime) -> BestHours:
    with sessions() as s:
        return BestHours.fit(s, now=now, lookback_days=120)


def test_morning_people_first_at_10h_evening_people_first_at_18h(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    cid, morning, evening = _two_segments(engine, sessions)
    model = _fit(sessions, WED_10_BOGOTA)
    plain = queue.reserve(sessions, cid, 4, worker=W, now=WED_10_BOGOTA)
    assert {r.account_id for r in plain} & evening  # due order alone mixes the two
    for r in plain:
        results.finish(sessions, r, queue.Outcome("no_answer"), WED_10_BOGOTA)
    at_10 = queue.reserve(sessions, cid, 4, worker=W, now=WED_10_BOGOTA, best_hours=model)
    assert len(at_10) == 4 and {r.account_id for r in at_10} <= morning
    at_18 = queue.reserve(sessions, cid, 4, worker=W, now=WED_18_BOGOTA, best_hours=model)
    assert len(at_18) == 4 and {r.account_id for r in at_18} <= evening


def test_callbacks_and_long_overdue_entries_keep_their_place(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    cid, morning, evening = _two_segments(engine, sessions)
    model = _fit(sessions, WED_10_BOGOTA)
    late, called_back = sorted(evening)[:2]
    with sessions.begin() as s:
        s.add(Callback(account_id=called_back, due_at=WED_10_BOGOTA - timedelta(minutes=5)))
        s.execute(
            update(CampaignEntry)
            .where(CampaignEntry.account_id == late)
            .values(next_at=WED_10_BOGOTA - ranking.MAX_DEFER - timedelta(minutes=1))
        )
    got = queue.reserve(sessions, cid, 4, worker=W, now=WED_10_BOGOTA, best_hours=model)
    assert [r.account_id for r in got[:2]] == [called_back, late]
    assert {r.account_id for r in got[2:]} <= morning


def test_the_worker_fits_the_model_and_dials_the_likelier_segment_first(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    cid, morning, evening = _two_segments(engine, sessions)
    with sessions.begin() as s:  # paused: the first fit runs in the background meanwhile
        cmp.pause(s, "c")
    clock = FakeClock(WED_10_BOGOTA)
    phone = FakePhone(iter(["no_answer"] * 100), clock=clock)

    async def main() -> list[int]:
        worker = DialerWorker(sessions, cid, phone, clock=clock, tick_s=0.01)
        runner = asyncio.create_task(worker.run())
        await _until(lambda: worker.model is not None)
        assert not phone.placed
        with sessions.begin() as s:
            cmp.resume(s, "c")
        await _until(lambda: len(phone.placed) >= 6)
        worker.stop()
        await asyncio.wait_for(runner, 10)
        return [r.account_id for r in phone.placed]

    placed = asyncio.run(main())  # one channel: one call at a time, each the worker's choice
    # The model's default lookback is 90 days: the history 65-90 days back is in it.
    assert set(placed) <= morning, placed
