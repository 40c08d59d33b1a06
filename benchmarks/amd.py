"""Answering-machine detection: per-frame cost and the confusion table over the test corpus.

Usage: .venv/bin/python benchmarks/amd.py [--repeat 3]

The corpus is the one tests/call/test_amd.py builds (real speech from Asterisk's recorded
Spanish prompts, espeak-ng and Piper, over a mu-law line with -40 dBFS noise). Costs are the
best of ``--repeat`` passes over every frame of the corpus, in microseconds per 20 ms frame,
for the classifier (which runs its own beep detector) and the beep detector alone. A few hard
cases the thresholds are known to get wrong are listed separately. Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import time

from tests.call.test_amd import (
    VM_ES,
    Clip,
    classify,
    confusion,
    espeak,
    format_confusion,
    frames,
    ms,
    phone_line,
    tone,
)
from tests.call.test_amd import corpus as test_corpus
from voiceagent.audio.format import FRAME_MS
from voiceagent.call.amd import AmdClassifier, AmdConfig
from voiceagent.call.beep import BeepDetector
from voiceagent.vad import WebRtcVad


def hard_cases() -> list[Clip]:
    """Machines whose first sentence is short and followed by a long pause; a human who
    answers with a long sentence. Asterisk-style timing rules get these wrong by design."""
    hola = espeak("Hola.", "es-419")
    rest = espeak(VM_ES.split(". ", 1)[1], "es-419")
    paused = phone_line(ms(300) + hola + ms(1000) + rest + ms(400) + tone(1000, 500), 90)
    chatty = espeak("Aló, sí, buenas tardes, habla María González, ¿quién es?", "es-419")
    return [
        Clip("machine: 'Hola.' + 1 s pause", "machine", "es", paused),
        Clip("human: long first sentence", "human", "es", phone_line(ms(400) + chatty, 91)),
    ]


def per_frame_us(all_frames: list[tuple[bytes, int]], repeat: int) -> tuple[float, float]:
    """Best-of-``repeat`` microseconds per frame: (classifier incl. beep, beep detector)."""
    best_amd = best_beep = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        amd = AmdClassifier(WebRtcVad(2), AmdConfig())
        for frame, _t in all_frames:
            amd.decision = None  # keep it analysing: the cost of a frame before the verdict
            amd.push(frame, 1000)
        best_amd = min(best_amd, (time.perf_counter() - start) / len(all_frames) * 1e6)
        start = time.perf_counter()
        beep = BeepDetector()
        for frame, t_ms in all_frames:
            beep.push(frame, t_ms)
        best_beep = min(best_beep, (time.perf_counter() - start) / len(all_frames) * 1e6)
    return best_amd, best_beep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    clips = test_corpus()
    all_frames = [f for c in clips for f in frames(c.pcm16_8k)]
    amd_us, beep_us = per_frame_us(all_frames, args.repeat)
    budget = FRAME_MS * 1000
    print(f"corpus: {len(clips)} clips, {len(all_frames) * FRAME_MS / 1000:.0f} s of audio")
    print(f"AmdClassifier.push (with its beep detector): {amd_us:6.1f} us/frame", end="")
    print(f" = {amd_us / budget:.2%} of the 20 ms frame")
    print(f"BeepDetector.push alone:                     {beep_us:6.1f} us/frame")
    print()
    for clip in clips + hard_cases():
        decision = classify(clip)
        heard = classify(clip, with_text=True) if clip.text else None
        verdict = decision.kind if decision else "none"
        line = f"{clip.name:34s} {clip.kind:9s} -> {verdict:9s}"
        if decision:
            line += f" {decision.reason:26s} at {decision.at_ms:5d} ms, words {decision.words}"
        if heard:
            line += f"  | with text: {heard.kind} ({heard.phrase}) at {heard.at_ms} ms"
        print(line)
    print("\nconfusion without recognizer text (screeners need words):")
    print(format_confusion(confusion(clips, with_text=False)))
    print("\nconfusion with recognizer text:")
    print(format_confusion(confusion(clips, with_text=True)))
    print("\nhard cases (not in the table above):")
    print(format_confusion(confusion(hard_cases(), with_text=False)))


if __name__ == "__main__":
    main()
