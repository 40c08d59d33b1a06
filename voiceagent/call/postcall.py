"""Post-call transcripts: both channels of a call recording, segmented and recognized offline.

Runs off the call's critical path (after hang-up, on a pool), with the accurate utterance-level
engine (Whisper), whatever engine the live call used. Each channel is cut into utterances by
the same Endpointer the live call uses, so the timings line up with the recording.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voiceagent.asr.base import Recognizer
from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS, RATE_HZ
from voiceagent.audio.wav import read_wav
from voiceagent.vad import Endpointer, EndpointerConfig, SpeechEnded, WebRtcVad

SPEAKERS = ("debtor", "agent")
"""Channel order of a call recording: left is the debtor, right is the agent."""


def _utterances(pcm16_8k: bytes) -> list[SpeechEnded]:
    endpointer = Endpointer(WebRtcVad(2), EndpointerConfig(end_silence_ms=700))
    found: list[SpeechEnded] = []
    n_frames = len(pcm16_8k) // BYTES_PER_FRAME
    for i in range(n_frames):
        frame = pcm16_8k[i * BYTES_PER_FRAME : (i + 1) * BYTES_PER_FRAME]
        found += [e for e in endpointer.push(frame, i * FRAME_MS) if isinstance(e, SpeechEnded)]
    silence = bytes(BYTES_PER_FRAME)
    t = n_frames * FRAME_MS
    while endpointer.in_speech:  # close an utterance still open at the end of the file
        t += FRAME_MS
        found += [e for e in endpointer.push(silence, t) if isinstance(e, SpeechEnded)]
    return found


def transcribe_recording(
    path: Path,
    recognizer: Recognizer,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Timed transcript of a stereo call recording (blocking; run it on a pool)."""
    wav = read_wav(path)
    if wav.rate_hz != RATE_HZ or wav.channels != len(SPEAKERS):
        raise ValueError(f"{path}: expected an 8 kHz stereo call recording")
    stereo = np.frombuffer(wav.pcm16, dtype="<i2").reshape(-1, 2)
    work = []
    for channel, speaker in enumerate(SPEAKERS):
        mono = np.ascontiguousarray(stereo[:, channel]).tobytes()
        work += [(speaker, u) for u in _utterances(mono)]
    lines: list[dict[str, Any]] = []
    session = recognizer.open()
    for done, (speaker, utterance) in enumerate(work, start=1):
        session.accept(utterance.pcm16_8k)
        final = session.finish()
        if final.text.strip():
            lines.append(
                {
                    "speaker": speaker,
                    "text": final.text.strip(),
                    "start_ms": utterance.onset_ms,
                    "end_ms": utterance.end_ms,
                    "confidence": round(final.confidence, 3),
                }
            )
        if progress is not None:
            progress(done, len(work))
    lines.sort(key=lambda line: line["start_ms"])
    return lines
