"""Helpers for the campaign, queue and worker tests (and the dialer benchmark).

Accounts are inserted with SQLAlchemy Core in bulk: Colombian debtors in America/Bogota with
one consented mobile each, all on one call list.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm import repo
from voiceagent.crm.models import Account, CallList, CallListRow, Campaign, Phone
from voiceagent.crm.types import utcnow
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer.queue import Outcome, Reservation

WED_10_BOGOTA = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
"""Wednesday 11 March 2026, 10:00 in Bogotá: inside Colombia's calling window."""
FIRST_MOBILE = 573_001_000_000
CHUNK = 5_000


def seed(
    engine: Engine,
    n: int,
    *,
    list_name: str = "list",
    first: int = 0,
    portfolio: str = "Tarjetas",
    days_past_due: int = 35,
) -> int:
    """Insert accounts ``first .. first+n-1`` with one phone each on a new call list; its id."""
    sessions = cmp_sessions(engine)
    with sessions.begin() as s:
        folio = repo.portfolio(s, "Banco Andino", portfolio)
        call_list = CallList(
            portfolio_id=folio.id,
            name=list_name,
            filename=f"{list_name}.csv",
            sha256="0" * 64,
            created_at=utcnow(),
        )
        s.add(call_list)
        s.flush()
        folio_id, list_id = folio.id, call_list.id
    accounts = cast(Table, Account.__table__)
    phones = cast(Table, Phone.__table__)
    rows = cast(Table, CallListRow.__table__)
    now = utcnow()
    for low in range(first, first + n, CHUNK):
        high = min(low + CHUNK, first + n)
        with engine.begin() as conn:
            conn.execute(
                insert(accounts),
                [
                    {
                        "portfolio_id": folio_id,
                        "external_ref": f"R-{i}",
                        "debtor_name": f"Deudor {i}",
                        "amount_owed_minor": 100_000 + i,
                        "currency": "COP",
                        "days_past_due": days_past_due,
                        "timezone": "America/Bogota",
                        "status": "active",
                        "locale": "es-419",
                        "extra": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(low, high)
                ],
            )
            found = conn.execute(
                select(accounts.c.external_ref, accounts.c.id).where(
                    accounts.c.portfolio_id == folio_id,
                    accounts.c.external_ref.in_([f"R-{i}" for i in range(low, high)]),
                )
            )
            ids = {ref: account_id for ref, account_id in found}
            conn.execute(
                insert(phones),
                [
                    {
                        "account_id": ids[f"R-{i}"],
                        "e164": f"+{FIRST_MOBILE + i}",
                        "type": "mobile",
                        "consent": True,
                        "priority": 0,
                        "created_at": now,
                    }
                    for i in range(low, high)
                ],
            )
            conn.execute(
                insert(rows),
                [
                    {
                        "call_list_id": list_id,
                        "line_no": i - first + 2,
                        "raw": {},
                        "account_id": ids[f"R-{i}"],
                    }
                    for i in range(low, high)
                ],
            )
    return list_id


def cmp_sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep objects readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def started(
    sessions: sessionmaker[Session],
    name: str,
    list_id: int,
    now: datetime = WED_10_BOGOTA,
    **config: Any,
) -> int:
    """Create and start a Colombian campaign over a list; its id."""
    config.setdefault("jurisdiction", "CO")
    with sessions.begin() as s:
        cmp.create(s, name, list_id, cmp.CampaignConfig(**config))
        return cmp.start(s, name, now).id


def campaign_status(sessions: sessionmaker[Session], campaign_id: int) -> str:
    """The campaign's status column."""
    with sessions() as s:
        found = s.get(Campaign, campaign_id)
        assert found is not None
        return found.status


class FakeClock:
    """A UTC clock that moves only when told (``advance``) or by ``step`` per reading."""

    def __init__(self, start: datetime = WED_10_BOGOTA, step: timedelta = timedelta()) -> None:
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        now = self.now
        self.now += self.step
        return now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward."""
        self.now += delta


class FakePhone:
    """A ``place_call`` that answers after a random short delay with scripted results."""

    def __init__(
        self,
        results: Iterator[str] | None = None,
        *,
        delay_s: tuple[float, float] = (0.0, 0.004),
        clock: Callable[[], datetime] = utcnow,
        seed: int = 7,
        spans: list[tuple[int, float, float]] | None = None,
    ) -> None:
        self.results = results
        self.spans = spans
        """When given: ``(account_id, start, end)`` of every call in monotonic time (shareable
        between dialers in threads: the real order of calls, whatever their clocks say)."""
        self.delay_s = delay_s
        self.clock = clock
        self.rng = random.Random(seed)
        self.placed: list[Reservation] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.aborted = 0

    async def __call__(self, reservation: Reservation) -> Outcome:
        start = time.monotonic()
        try:
            return await self._call(reservation)
        finally:
            if self.spans is not None:
                self.spans.append((reservation.account_id, start, time.monotonic()))

    async def _call(self, reservation: Reservation) -> Outcome:
        self.placed.append(reservation)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.rng.uniform(*self.delay_s))
            result = next(self.results) if self.results is not None else "answered"
            if result in ("answered", "machine"):
                at = self.clock()
                assert reservation.connect_check is not None
                verdict = await reservation.connect_check(at)
                if not verdict.allowed:
                    self.aborted += 1
                    kind = "abandoned" if verdict.rule == "dialer.no_free_seat" else "aborted"
                    return Outcome(kind, next_allowed_at=verdict.next_allowed_at)
                await asyncio.sleep(self.rng.uniform(*self.delay_s))
                return Outcome(result, sip_code=200, answered_at=at)
            return Outcome(result, sip_code={"busy": 486, "no_answer": 408}.get(result, 503))
        finally:
            self.in_flight -= 1
