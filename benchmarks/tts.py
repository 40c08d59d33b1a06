"""Piper latency: RTF and time to first audio (TTFA), whole sentence vs clause-split, and the
prompt cache's hit vs miss latency. Figures are printed, never asserted.

    .venv/bin/python benchmarks/tts.py [--runs 5] [--threads 1 2]

The "whole" columns synthesize the sentence unsplit in the same run: that is the baseline the
clause splitting is measured against. Medians over --runs after one warm-up each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from voiceagent.tts.cache import PromptCache
from voiceagent.tts.piper import PiperSynthesizer, default_voice

BYTES_PER_S = 16000
SENTENCES = [
    ("en-US", "Yes, I can pay on December fifteenth."),
    ("en-US", "Hello, this is Joe calling from the billing department about your account balance."),
    ("es-419", "Sí, puedo pagar el quince de diciembre."),
    (
        "es-419",
        "Hola, le llamo del departamento de cobranzas para hablar sobre su saldo pendiente.",
    ),
    (
        "es-419",
        "Si le queda mejor, puede hacer un primer pago de al menos cien mil pesos a más tardar "
        "el quince de enero, y pagar el resto en hasta seis cuotas. ¿Le sirve esta opción?",
    ),
]
CACHED = "Si le queda mejor, puede hacer un primer pago de al menos cien mil pesos."


def median_of(runs: int, measure: Callable[[], tuple[float, ...]]) -> tuple[float, ...]:
    measure()  # warm-up
    samples = [measure() for _ in range(runs)]
    return tuple(statistics.median(column) for column in zip(*samples, strict=True))


def whole(voice: PiperSynthesizer, text: str) -> tuple[float, float]:
    started = time.perf_counter()
    pcm16_8k = voice.synthesize_clause(text)
    return time.perf_counter() - started, len(pcm16_8k) / BYTES_PER_S


def split(voice: PiperSynthesizer, text: str) -> tuple[float, float, float]:
    started = time.perf_counter()
    first, n_bytes = 0.0, 0
    for chunk in voice.synthesize(text):
        first = first or time.perf_counter() - started
        n_bytes += len(chunk)
    return first, time.perf_counter() - started, n_bytes / BYTES_PER_S


def synthesis_table(runs: int, thread_counts: list[int]) -> None:
    print(
        f"{'locale':<7} {'thr':>3} {'audio':>6} {'cl':>2} | {'whole TTFA':>10} {'RTF':>6} | "
        f"{'split TTFA':>10} {'RTF':>6} {'1st cl':>6} | {'TTFA gain':>9}  text"
    )
    for threads in thread_counts:
        for locale, text in SENTENCES:
            voice = default_voice(locale, threads=threads, noise_scale=0, noise_w=0)
            whole_s, whole_audio_s = median_of(runs, lambda v=voice, t=text: whole(v, t))
            first_s, total_s, split_audio_s = median_of(runs, lambda v=voice, t=text: split(v, t))
            first_clause_s = len(voice.synthesize_clause(voice.clauses(text)[0])) / BYTES_PER_S
            print(
                f"{locale:<7} {threads:>3} {whole_audio_s:5.2f}s {len(voice.clauses(text)):>2} | "
                f"{whole_s * 1000:8.0f}ms {whole_s / whole_audio_s:6.3f} | "
                f"{first_s * 1000:8.0f}ms {total_s / split_audio_s:6.3f} {first_clause_s:5.2f}s | "
                f"{whole_s / first_s:8.1f}x  {text[:38]}"
            )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def cache_table(runs: int) -> None:
    voice = default_voice("es-419", threads=1, noise_scale=0, noise_w=0)
    rows: dict[str, list[float]] = {"miss get": [], "hit get": [], "miss 1st": [], "hit 1st": []}
    with tempfile.TemporaryDirectory() as root:
        for run in range(runs + 1):  # run 0 is the warm-up
            whole_text = PromptCache(Path(root, f"get{run}"), voice)
            first_only = PromptCache(Path(root, f"first{run}"), voice)
            times = {
                "miss get": timed(lambda c=whole_text: c.get(CACHED)),
                "hit get": timed(lambda c=whole_text: c.get(CACHED)),
                "miss 1st": timed(lambda c=first_only: next(iter(c.synthesize(CACHED)))),
                "hit 1st": timed(lambda c=first_only: next(iter(c.synthesize(CACHED)))),
            }
            for label, seconds in times.items():
                if run:
                    rows[label].append(seconds)
        audio_s = len(whole_text.get(CACHED)) / BYTES_PER_S
    print(f"\nprompt cache, es-419, 1 thread, {CACHED!r} ({audio_s:.2f} s, 2 clauses)")
    print(f"{'':<5} {'get(): all clauses':>18} {'synthesize(): 1st clause':>25}")
    for kind in ("miss", "hit"):
        get_ms = statistics.median(rows[f"{kind} get"]) * 1000
        first_ms = statistics.median(rows[f"{kind} 1st"]) * 1000
        print(f"{kind:<5} {get_ms:16.2f}ms {first_ms:23.2f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"Piper joe weights, onnxruntime CPU, {os.cpu_count()} cores (load average {load}),")
    print(f"medians of {args.runs} runs after a warm-up")
    print("TTFA gain = whole-sentence TTFA / split TTFA; '1st cl' = audio length of clause 1\n")
    synthesis_table(args.runs, args.threads)
    cache_table(args.runs)


if __name__ == "__main__":
    main()
