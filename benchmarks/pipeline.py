"""N concurrent simulated calls in one worker process: turn latency, CPU, memory, cache hits.

Each call is the full pipeline (VAD, recognizer, dialog, Piper through the prompt cache,
paced playout, stereo recording) against a scripted debtor, all in one asyncio loop with the
shared engines and bounded pools, as a production worker runs them. Figures are printed, not
asserted. The baseline in the same run is N=1 (a single call alone on the machine).

    .venv/bin/python benchmarks/pipeline.py --calls 1 4 8 --asr whisper
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from voiceagent.call.simulate import load_engines, simulate_call
from voiceagent.dialog.account import Account
from voiceagent.dialog.loader import load_dialplan

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = (ROOT / "tests" / "fixtures" / "scripts" / "es-promise.txt").read_text().splitlines()


NAMES = [
    "María Fernanda López",
    "Juan Carlos Pérez",
    "Luisa Gómez",
    "Andrés Felipe Rojas",
    "Camila Torres",
    "Santiago Herrera",
    "Valentina Castro",
    "Diego Alejandro Ruiz",
]


def account_for(base: Account, batch: int, i: int) -> Account:
    """A different debtor per call (name and amount), so account values are never pre-warmed."""
    k = batch * 100 + i
    return base.model_copy(
        update={
            "name": NAMES[k % len(NAMES)] if k else base.name,
            "amount_owed": base.amount_owed + 37_000 * k,
        }
    )


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def run_batch(n: int, engines, plan, account, root: Path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    hits0, misses0 = engines.voice.hit_bytes, engines.voice.miss_bytes
    results = await asyncio.gather(
        *(
            simulate_call(
                plan,
                account_for(account, n, i),
                SCRIPT,
                date(2026, 11, 18),
                root / f"n{n}-{i}",
                engines,
            )
            for i in range(n)
        )
    )
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    lat = [float(t.latency_ms) for r, _ in results for t in r.turns if t.latency_ms is not None]
    asr = [t.asr_ms for r, _ in results for t in r.turns]
    tts = [t.tts_first_ms for r, _ in results for t in r.turns]
    call_minutes = sum(r.duration_ms for r, _ in results) / 60_000
    promises = sum(r.outcome["result"] == "promise" for r, _ in results)
    hits = engines.voice.hit_bytes - hits0
    misses = engines.voice.miss_bytes - misses0
    return {
        "calls": n,
        "promises": promises,
        "p50": pct(lat, 50),
        "p95": pct(lat, 95),
        "asr_p50": pct(asr, 50),
        "tts_first_p95": pct(tts, 95),
        "cpu_s_per_call_min": cpu / call_minutes if call_minutes else float("nan"),
        "wall_s": wall,
        "cache_hit": hits / (hits + misses) if hits + misses else float("nan"),
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--asr", choices=["whisper", "vosk"], default="whisper")
    args = parser.parse_args()
    plan = load_dialplan(ROOT / "dialplans" / "es-419" / "early.yaml")
    account = Account.model_validate(
        json.loads((ROOT / "tests" / "fixtures" / "accounts" / "co-early.json").read_text())
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        engines = load_engines("es-419", args.asr, root / "models", root / "cache")
        rows = []
        try:
            for n in args.calls:
                rows.append(asyncio.run(run_batch(n, engines, plan, account, root)))
        finally:
            engines.pools.shutdown()
    print(f"pipeline benchmark, asr={args.asr}, es-419/early.yaml, 6-turn script; baseline: N=1")
    print(
        f"{'N':>3} {'promise':>7} {'p50 ms':>7} {'p95 ms':>7} {'asr p50':>8} {'tts1 p95':>8} "
        f"{'cpu s/call-min':>14} {'wall s':>7} {'cache hit':>9} {'RSS MiB':>8}"
    )
    for r in rows:
        print(
            f"{r['calls']:>3} {r['promises']:>7} {r['p50']:>7.0f} {r['p95']:>7.0f}"
            f" {r['asr_p50']:>8.0f} {r['tts_first_p95']:>8.0f}"
            f" {r['cpu_s_per_call_min']:>14.2f} {r['wall_s']:>7.1f}"
            f" {r['cache_hit']:>9.0%} {r['rss_mib']:>8.0f}"
        )
    print("latency = true end of debtor speech -> first agent audio frame out (includes the 600 ms")
    print("end-of-turn silence); asr/tts1 are engine wall times per turn in ms; cache hit is the")
    print("share of spoken agent audio served from the prompt cache: template text prerendered at")
    print("load, each call's account values rendered while it rings (session.prepare); every")
    print("call is a different debtor (name, amount): no call finds its values already cached.")


if __name__ == "__main__":
    main()
