"""Dialer reservation decisions per second over a 1,000,000-account campaign.

Generates the accounts (one consented Colombian mobile each, a few with a pending promise, a
stop-contact, a wrong-number second phone or an attempt in the contact ledger) and one running
campaign with an entry per account, by bulk SQLAlchemy Core inserts (``executemany`` in
batches; ``COPY`` on PostgreSQL), then times :func:`voiceagent.dialer.queue.reserve` with
``n=1`` and batched (``n=10``, ``n=50``), each call one committed transaction as the dialer runs
it. Next to it, measured in the same run on the same database: the floor of one decision, an
indexed ``SELECT ... LIMIT 1`` on ``campaign_entries`` (and a one-row committed write, the cost
of a durable transaction). It prints the query plans of the statements one reservation runs
(a ``SCAN``/``Seq Scan`` of a big table is flagged) and how many statements it runs.

    .venv/bin/python benchmarks/dialer.py                     # 1,000,000 accounts, SQLite + PG
    .venv/bin/python benchmarks/dialer.py --accounts 100000 --decisions 500 --no-pg
    .venv/bin/python benchmarks/dialer.py --pg-url postgresql://u@host/empty_db

PostgreSQL: ``--pg-url`` (an empty database), else a throwaway local cluster from
``tests/pg.py`` when the server binaries are installed (fsync off, as in the tests). SQLite:
a file in a temp directory, WAL and ``synchronous=FULL`` as the CRM runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, Table, event, insert, select, update  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from voiceagent.crm.db import make_engine, session_factory, upgrade  # noqa: E402
from voiceagent.crm.models import (  # noqa: E402
    Account,
    Attempt,
    CallList,
    Campaign,
    CampaignEntry,
    ContactRestriction,
    Creditor,
    Phone,
    Portfolio,
    Promise,
)
from voiceagent.dialer import campaigns as cmp  # noqa: E402
from voiceagent.dialer import queue  # noqa: E402
from voiceagent.dialer.besthours import BestHours  # noqa: E402

NOW = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
"""Wednesday 11 March 2026, 10:00 in Bogotá: inside Colombia's calling window."""
FIRST_MOBILE = 573_000_000_000
BATCH = 20_000
PROMISED, STOPPED, WRONG_NUMBER, DIALLED_BEFORE = 0.02, 0.01, 0.005, 0.05
"""Shares of accounts with a pending promise, a stop-contact on the account, a wrong-number
first phone (and a second phone), an attempt three days ago (in the contact ledger)."""
MODES = (1, 10, 50)
RANKED_MODES = (10, 50)
"""Batch sizes timed again with a best-hours model: each call ranks 4x n candidates."""
BIG_TABLES = ("accounts", "phones", "campaign_entries", "attempts", "promises")


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


class Data:
    """The generated rows, column lists per table (the same on both databases)."""

    def __init__(self, accounts: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.n = accounts
        created = NOW - timedelta(days=30)
        self.accounts: list[dict[str, Any]] = []
        self.phones: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []
        self.promises: list[dict[str, Any]] = []
        self.restrictions: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        phone_id = 0
        queued = NOW - timedelta(hours=1)  # as campaigns.enqueue leaves them: one moment

        def retry_at(rng: random.Random) -> datetime:  # retries, due at scattered moments
            return NOW - timedelta(seconds=rng.randrange(0, 48 * 3600))

        for i in range(1, accounts + 1):
            self.accounts.append(
                {
                    "id": i,
                    "portfolio_id": 1,
                    "external_ref": f"R-{i}",
                    "debtor_name": f"Deudor {i}",
                    "document_number": str(10_000_000 + i),
                    "amount_owed_minor": rng.randrange(50_000, 20_000_000) * 100,
                    "currency": "COP",
                    "days_past_due": rng.randrange(1, 400),
                    "timezone": "America/Bogota",
                    "status": "active",
                    "locale": "es-419",
                    "extra": {},
                    "created_at": created,
                    "updated_at": created,
                }
            )
            phone_id += 1
            first_phone = phone_id
            self.phones.append(self._phone(phone_id, i, FIRST_MOBILE + i, 0, created))
            draw = rng.random()
            if draw < PROMISED:
                self.promises.append(
                    {
                        "account_id": i,
                        "amount_minor": 1_000_000,
                        "currency": "COP",
                        "due_date": date(2026, 3, 20),
                        "plan": "full",
                        "status": "pending",
                        "paid_minor": 0,
                        "created_at": created,
                    }
                )
            elif draw < PROMISED + STOPPED:
                self.restrictions.append(self._restriction(i, None, "stop_contact", created))
            elif draw < PROMISED + STOPPED + WRONG_NUMBER:
                self.restrictions.append(self._restriction(i, first_phone, "wrong_number", created))
                phone_id += 1
                self.phones.append(
                    self._phone(phone_id, i, FIRST_MOBILE + 500_000_000 + i, 1, created)
                )
            if rng.random() < DIALLED_BEFORE:
                self.attempts.append(
                    {
                        "campaign_id": None,
                        "account_id": i,
                        "phone_id": first_phone,
                        "started_at": NOW - timedelta(days=3),
                        "ended_at": NOW - timedelta(days=3),
                        "result": "no_answer",
                    }
                )
            self.entries.append(
                {
                    "id": i,
                    "campaign_id": 1,
                    "account_id": i,
                    "status": "pending",
                    "priority": 0 if rng.random() < 0.9 else 1,
                    "next_at": queued if rng.random() < 0.9 else retry_at(rng),
                    "attempts": 0,
                    "updated_at": created,
                }
            )

    @staticmethod
    def _phone(pid: int, account: int, number: int, priority: int, at: datetime) -> dict[str, Any]:
        return {
            "id": pid,
            "account_id": account,
            "e164": f"+{number}",
            "type": "mobile",
            "consent": True,
            "priority": priority,
            "created_at": at,
        }

    @staticmethod
    def _restriction(account: int, phone: int | None, kind: str, at: datetime) -> dict[str, Any]:
        return {
            "account_id": account,
            "phone_id": phone,
            "kind": kind,
            "scope": "phone" if phone else "account",
            "created_at": at,
        }

    def tables(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        """In foreign-key order."""
        return [
            (_table(Account), self.accounts),
            (_table(Phone), self.phones),
            (_table(Promise), self.promises),
            (_table(ContactRestriction), self.restrictions),
            (_table(Attempt), self.attempts),
            (_table(CampaignEntry), self.entries),
        ]


def _parents(engine: Engine) -> None:
    """Creditor, portfolio, call list and the running campaign (id 1 each)."""
    sessions = session_factory(engine)
    with sessions.begin() as s:
        s.add(Creditor(id=1, name="Banco Andino"))
        s.flush()
        s.add(Portfolio(id=1, creditor_id=1, name="Tarjetas"))
        s.flush()
        s.add(CallList(id=1, portfolio_id=1, name="bench", filename="bench.csv", sha256="0" * 64))
        s.flush()
        campaign = cmp.create(s, "bench", 1, cmp.CampaignConfig(jurisdiction="CO"))
        campaign.status, campaign.started_at = "running", NOW
        assert campaign.id == 1


def _copy_value(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value)
    return value.isoformat() if isinstance(value, datetime | date) else value


def load(engine: Engine, data: Data) -> float:
    """Insert every generated row; the seconds it took."""
    start = time.perf_counter()
    _parents(engine)
    for table, rows in data.tables():
        if not rows:
            continue
        columns = list(rows[0])
        if engine.dialect.name == "postgresql":
            raw = engine.raw_connection()
            try:
                cursor: Any = raw.cursor()
                names = ", ".join(columns)
                with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row([_copy_value(row[c]) for c in columns])
                raw.commit()
            finally:
                raw.close()
        else:
            stmt = insert(table)
            for low in range(0, len(rows), BATCH):
                with engine.begin() as conn:
                    conn.execute(stmt, rows[low : low + BATCH])
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table, _ in data.tables():  # explicit ids: move the sequences past them
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                )
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - start


class Recorder:
    """Collects the statements (and parameters) an engine runs while ``on``."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.on:
            self.statements.append((statement, params))

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[str, Any]]]:
        self.statements, self.on = [], True
        try:
            yield self.statements
        finally:
            self.on = False


def explain(engine: Engine, statements: list[tuple[str, Any]]) -> list[str]:
    """Plans of the SELECTs among ``statements``; lines with a full scan of a big table marked."""
    out: list[str] = []
    pg = engine.dialect.name == "postgresql"
    seen: set[str] = set()
    for sql, params in statements:
        head = sql.lstrip().upper()
        if not head.startswith("SELECT") or sql in seen:
            continue
        seen.add(sql)
        if isinstance(params, list):  # executemany: the first row's parameters
            params = params[0] if params else ()
        prefix = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(prefix + sql, params).all()
        one_line = " ".join(sql.split())
        out.append(f"  -- {one_line[:160]}{'...' if len(one_line) > 160 else ''}")
        for row in rows:
            line = str(row[0]) if pg else str(row[-1])
            full_scan = (
                any(
                    (f"Seq Scan on {t}" in line) if pg else (line.startswith("SCAN " + t))
                    for t in BIG_TABLES
                )
                and "USING" not in line
            )
            out.append(f"     {'!! FULL SCAN !! ' if full_scan else ''}{line}")
    return out


def _percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def time_reserve(
    sessions: sessionmaker[Any],
    decisions: int,
    n: int,
    clock: Callable[[], datetime],
    best_hours: BestHours | None = None,
) -> tuple[float, list[float], int]:
    """Reserve ``decisions`` calls ``n`` at a time: (seconds, ms per decision per call, calls)."""
    per_decision: list[float] = []
    done = calls = 0
    start = time.perf_counter()
    while done < decisions:
        t0 = time.perf_counter()
        got = queue.reserve(
            sessions,
            1,
            min(n, decisions - done),
            worker="bench:1",
            now=clock(),
            best_hours=best_hours,
        )
        elapsed = time.perf_counter() - t0
        calls += 1
        if not got:
            raise RuntimeError("the campaign ran dry: use fewer --decisions or more --accounts")
        done += len(got)
        per_decision.extend([elapsed * 1000 / len(got)] * len(got))
    return time.perf_counter() - start, per_decision, calls


def time_baseline(engine: Engine, count: int) -> tuple[float, float]:
    """ms per indexed ``SELECT ... LIMIT 1`` on the queue, and per one-row committed write."""
    entries = _table(CampaignEntry)
    head = (
        select(entries.c.id)
        .where(
            entries.c.campaign_id == 1,
            entries.c.status == "pending",
            entries.c.next_at <= NOW,
        )
        .order_by(entries.c.priority, entries.c.next_at, entries.c.id)
        .limit(1)
    )
    with engine.connect() as conn:
        start = time.perf_counter()
        for _ in range(count):
            conn.execute(head).scalar()
        read_ms = (time.perf_counter() - start) * 1000 / count
    writes = max(count // 10, 20)
    touch = update(_table(Campaign)).where(_table(Campaign).c.id == 1).values(priority=0)
    start = time.perf_counter()
    for _ in range(writes):
        with engine.begin() as conn:
            conn.execute(touch)
    write_ms = (time.perf_counter() - start) * 1000 / writes
    return read_ms, write_ms


def bench(
    label: str, url: str, data: Data, decisions: int, show_plans: bool, revision: str
) -> list[str]:
    """Load, explain, time; the table rows of this backend."""
    upgrade(url, revision)
    engine = make_engine(url)
    try:
        seconds = load(engine, data)
        rows = sum(len(r) for _, r in data.tables())
        print(f"{label}: loaded {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)")
        sessions = session_factory(engine)
        recorder = Recorder(engine)
        tick = iter(range(10**9))

        def clock() -> datetime:  # a millisecond per reservation call: no two at one moment
            return NOW + timedelta(milliseconds=next(tick))

        with recorder.recording() as statements:
            got = queue.reserve(sessions, 1, 1, worker="bench:1", now=clock())
        print(f"{label}: one reserve(n=1) ran {len(statements)} statements, reserved {len(got)}")
        plans = explain(engine, statements)
        if show_plans:
            print("\n".join(plans))
        if any("FULL SCAN" in line for line in plans):
            print(f"{label}: WARNING: a reservation statement scans a big table")
        read_ms, write_ms = time_baseline(engine, decisions)
        start = time.perf_counter()
        with sessions() as s:
            model = BestHours.fit(s, now=NOW)
        fit_s = time.perf_counter() - start
        print(f"{label}: best-hours model fitted in {fit_s:.2f} s")
        out = []
        modes: list[tuple[int, BestHours | None]] = [(n, None) for n in MODES]
        if "best_hours" in inspect.signature(queue.reserve).parameters:  # not in old --queue-file
            modes += [(n, model) for n in RANKED_MODES]
        for n, ranker in modes:
            with recorder.recording() as statements:
                total, per, calls = time_reserve(sessions, decisions, n, clock, ranker)
            mode = f"n={n}" + (" ranked" if ranker is not None else "")
            out.append(
                f"{label:<11} reserve {mode:<10} {decisions / total:>9,.0f} "
                f"{_percentile(per, 50):>9.2f} {_percentile(per, 95):>9.2f} "
                f"{len(statements) / decisions:>8.1f}   "
                f"SELECT..LIMIT 1 {read_ms:.3f} ms, 1-row commit {write_ms:.2f} ms"
            )
            print(out[-1], flush=True)
        return out
    finally:
        engine.dispose()


@contextlib.contextmanager
def postgres(url: str | None, enabled: bool) -> Iterator[str | None]:
    if url or not enabled:
        yield url
        return
    from tests.pg import find_bindir, local_cluster

    if find_bindir() is None:
        print("postgresql: server binaries not installed, skipped (or pass --pg-url)")
        yield None
        return
    with local_cluster() as cluster:
        yield cluster.new_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=2_000, help="per mode")
    parser.add_argument("--pg-url", default=None, help="an empty PostgreSQL database")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--quiet-plans", action="store_true", help="only flag full scans")
    parser.add_argument("--revision", default="head", help="migrate only to this revision")
    parser.add_argument(
        "--queue-file", type=Path, help="another voiceagent/dialer/queue.py (compare versions)"
    )
    args = parser.parse_args()
    if args.queue_file:
        global queue
        spec = importlib.util.spec_from_file_location("voiceagent.dialer.queue", args.queue_file)
        assert spec is not None and spec.loader is not None
        queue = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = queue
        spec.loader.exec_module(queue)
    start = time.perf_counter()
    data = Data(args.accounts)
    print(f"generated {args.accounts:,} accounts in {time.perf_counter() - start:.1f} s")
    lines: list[str] = []
    plans = not args.quiet_plans
    with tempfile.TemporaryDirectory(prefix="voiceagent-dialer-") as tmp:
        if not args.no_sqlite:
            url = f"sqlite:///{tmp}/bench.sqlite3"
            lines += bench("sqlite", url, data, args.decisions, plans, args.revision)
        with postgres(args.pg_url, not args.no_pg) as pg_url:
            if pg_url:
                lines += bench("postgresql", pg_url, data, args.decisions, plans, args.revision)
    print()
    print(
        f"{'backend':<11} {'mode':<18} {'decis./s':>9} {'p50 ms':>9} {'p95 ms':>9} "
        f"{'stmts/d':>8}   baseline (same database, same run)"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
