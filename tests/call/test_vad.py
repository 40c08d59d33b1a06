"""The Endpointer on real speech: onsets, ends, pre-roll, noise, echo."""

from __future__ import annotations

import numpy as np
import pytest

from tests.call.speech import espeak
from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS, SILENCE_FRAME
from voiceagent.vad import (
    Endpointer,
    EndpointerConfig,
    SpeechEnded,
    SpeechStarted,
    WebRtcVad,
    rms,
)


def frames(pcm: bytes) -> list[bytes]:
    pcm = pcm + bytes(-len(pcm) % BYTES_PER_FRAME)
    return [pcm[i : i + BYTES_PER_FRAME] for i in range(0, len(pcm), BYTES_PER_FRAME)]


def scale(frame: bytes, gain: float) -> bytes:
    return (np.frombuffer(frame, np.int16).astype(np.float32) * gain).astype(np.int16).tobytes()


def run(ep: Endpointer, audio: list[bytes], agent_level: float = 0.0) -> list[tuple[int, object]]:
    events = []
    for i, f in enumerate(audio):
        for ev in ep.push(f, i * FRAME_MS, agent_level):
            events.append((i * FRAME_MS, ev))
    return events


@pytest.mark.models
def test_one_utterance_with_preroll_and_true_end() -> None:
    speech = frames(espeak("sí, puedo pagar el quince de diciembre"))
    lead = [SILENCE_FRAME] * 50  # 1 s
    audio = lead + speech + [SILENCE_FRAME] * 60
    ep = Endpointer(WebRtcVad(2), EndpointerConfig(end_silence_ms=600))
    events = run(ep, audio)
    kinds = [type(ev).__name__ for _, ev in events]
    assert kinds == ["SpeechStarted", "SpeechEnded"], kinds
    started = events[0][1]
    ended = events[1][1]
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    assert 1000 <= started.onset_ms <= 1200
    # The turn ends end_silence_ms after the last speech frame, not later.
    assert events[1][0] - ended.end_ms <= 620
    loud = [i for i, f in enumerate(speech) if rms(f) > 300]
    speech_end_ms = 1000 + (loud[-1] + 1) * FRAME_MS  # espeak pads its output with silence
    assert speech_end_ms - 100 <= ended.end_ms <= speech_end_ms + 40
    # Pre-roll: the utterance starts ~300 ms before the onset.
    assert len(ended.pcm16_8k) >= (ended.end_ms - ended.onset_ms + 300) * 16


def test_a_click_is_dropped() -> None:
    rng = np.random.default_rng(0)
    click = (rng.normal(0, 8000, 160 * 6)).astype(np.int16).tobytes()  # 120 ms of noise burst
    audio = [SILENCE_FRAME] * 10 + frames(click) + [SILENCE_FRAME] * 60
    ep = Endpointer(WebRtcVad(3), EndpointerConfig(min_speech_ms=200))
    kinds = [type(ev).__name__ for _, ev in run(ep, audio)]
    assert "SpeechEnded" not in kinds
    assert kinds in ([], ["SpeechStarted", "SpeechDropped"])


@pytest.mark.models
def test_own_echo_is_not_speech() -> None:
    speech = frames(espeak("hola, le saluda Sofía, asistente virtual de Banco Andino"))
    echo = [scale(f, 0.25) for f in speech]
    # The same echo without the agent playing would be speech; with the agent's level, it is not.
    alone = run(Endpointer(WebRtcVad(2)), echo + [SILENCE_FRAME] * 40)
    assert any(isinstance(ev, SpeechStarted) for _, ev in alone)
    ep = Endpointer(WebRtcVad(2))
    events = []
    for i, (f, a) in enumerate(zip(echo, speech, strict=True)):
        events += ep.push(f, i * FRAME_MS, rms(a))
    assert not [ev for ev in events if isinstance(ev, SpeechStarted)]


def test_frame_size_is_checked() -> None:
    with pytest.raises(ValueError):
        Endpointer(WebRtcVad()).push(b"\0" * 100, 0)
