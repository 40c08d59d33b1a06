"""Call-list import rate: a generated CSV (about 1% bad rows) into SQLite and PostgreSQL.

Prints, for each database, rows per second, wall seconds, CPU seconds (this process and its
validation workers: on a shared machine the wall time swings, the CPU time much less) and peak
RSS, next to a baseline measured in the same run on the same file: plain ``csv.reader``.

    .venv/bin/python benchmarks/importer.py                   # 1,000,000 rows, SQLite + local PG
    .venv/bin/python benchmarks/importer.py --rows 100000 --pg-url postgresql://u@host/db
    .venv/bin/python benchmarks/importer.py --no-pg --workers 0

PostgreSQL: ``--pg-url`` (an empty database), else a throwaway local cluster from
``tests/pg.py`` when the server binaries are installed (fsync off, as in the tests).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voiceagent.crm.db import make_engine, upgrade  # noqa: E402
from voiceagent.dialer.importer import import_list  # noqa: E402

CO_MOBILE = ("300", "301", "302", "304", "305", "310", "311", "312", "313", "314", "315", "316")
NAMES = ("María", "José", "Ana", "Luis", "Carmen", "Jorge", "Lucía", "Andrés", "Sofía", "Juan")
SURNAMES = ("López", "García", "Rodríguez", "Martínez", "Pérez", "Gómez", "Díaz", "Torres")
BAD = (
    ("phone", "123"),
    ("name", ""),
    ("amount_owed", "12,34,5"),
    ("country", "XX"),
    ("phone", "+52 55 1234 5678"),  # a Mexican number on a Colombian row
)
HEADER = ("name", "phone", "document", "amount_owed", "days_past_due", "email", "country", "city")


def generate(path: Path, rows: int, seed: int = 7) -> int:
    """Write a ``;``-separated UTF-8 call list like a Colombian creditor's; return bad rows."""
    rng = random.Random(seed)
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, delimiter=";")
        out.writerow(HEADER)
        for i in range(rows):
            pesos = rng.randrange(50_000, 20_000_000)
            style = rng.random()
            if style < 0.7:
                amount = str(pesos)
            elif style < 0.85:
                amount = f"{pesos:,}".replace(",", ".") + f",{rng.randrange(100):02d}"
            else:
                amount = f"{pesos:,}.{rng.randrange(100):02d}"
            prefix = CO_MOBILE[i % len(CO_MOBILE)]
            phone = f"{prefix} {i // len(CO_MOBILE) % 10_000_000:07d}"
            row = {
                "name": f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}",
                "phone": f"{phone[:7]} {phone[7:]}" if i % 3 else phone.replace(" ", ""),
                "document": str(10_000_000 + i),
                "amount_owed": amount,
                "days_past_due": str(rng.randrange(1, 400)),
                "email": f"d{i}@example.com" if i % 4 == 0 else "",
                "country": "CO",
                "city": "Bogotá",
            }
            if rng.random() < 0.01:
                column, value = rng.choice(BAD)
                row[column] = value
                bad += 1
            out.writerow([row[h] for h in HEADER])
    return bad


def baseline(path: Path) -> float:
    """Seconds for plain ``csv.reader`` over the file (the floor of any CSV import)."""
    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as f:
        for _ in csv.reader(f, delimiter=";"):
            pass
    return time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident memory of this process and of its (finished) worker processes, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def run(label: str, url: str, path: Path, rows: int, workers: int | None) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        start, cpu = time.perf_counter(), cpu_seconds()
        result = import_list(engine, path, "bench", region="CO", workers=workers)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    finally:
        engine.dispose()
    own, children = peak_rss_mib()
    print(
        f"{label:<10} {rows / seconds:>10,.0f} rows/s  {seconds:7.1f} s  "
        f"(CPU {cpu:.0f} s in this process and its workers; a database server's not counted)  "
        f"imported {result.imported:,}  duplicates {result.duplicates:,}  "
        f"rejected {len(result.rejected):,}  peak RSS {own:.0f} MiB (workers {children:.0f} MiB)"
    )


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=None, help="0: validate in-process")
    parser.add_argument("--pg-url", default=None, help="an empty PostgreSQL database")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voiceagent-import-") as tmp:
        path = Path(tmp) / "list.csv"
        start = time.perf_counter()
        bad = generate(path, args.rows)
        size_mib = path.stat().st_size / 2**20
        print(
            f"generated {args.rows:,} rows ({bad:,} bad), {size_mib:.0f} MiB "
            f"in {time.perf_counter() - start:.1f} s"
        )
        seconds = baseline(path)
        rate = args.rows / seconds
        print(f"{'baseline':<10} {rate:>10,.0f} rows/s  {seconds:7.1f} s  (csv.reader alone)")
        run("sqlite", f"sqlite:///{tmp}/bench.sqlite3", path, args.rows, args.workers)
        with postgres(args.pg_url, not args.no_pg) as url:
            if url:
                run("postgresql", url, path, args.rows, args.workers)


if __name__ == "__main__":
    main()
