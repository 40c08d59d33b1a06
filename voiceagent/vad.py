"""Voice activity: webrtcvad per 20 ms frame, and the Endpointer that turns frames into turns.

The Endpointer is hysteresis on top of a per-frame speech flag: an utterance starts after
``start_ms`` of speech within a short window, keeps ``preroll_ms`` of audio from before the
onset for the recognizer, and ends after ``end_silence_ms`` of trailing silence. Bursts shorter
than ``min_speech_ms`` (clicks, a cough) are dropped. While the agent is talking, frames not
clearly louder than the estimated echo of the agent's own voice are treated as echo.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS, RATE_HZ

_AGENT_TALKING = 300.0
"""Agent frames at least this loud (RMS) feed the echo estimate."""
_MIN_ECHO_EVIDENCE = 25
"""Agent-talking frames (500 ms) before the echo estimate is trusted."""


class Vad(Protocol):
    """Says whether one 20 ms PCM16 8 kHz frame contains speech."""

    def is_speech(self, pcm16_8k: bytes) -> bool:
        """True for speech."""
        ...


class WebRtcVad:
    """webrtcvad (C code, microseconds per frame: runs inline on the event loop)."""

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        if not 0 <= aggressiveness <= 3:
            raise ValueError("webrtcvad aggressiveness is 0..3")
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, pcm16_8k: bytes) -> bool:
        """True for speech."""
        return bool(self._vad.is_speech(pcm16_8k, RATE_HZ))


def rms(pcm16: bytes) -> float:
    """Root-mean-square level of PCM16 audio (0..32768)."""
    if not pcm16:
        return 0.0
    samples = np.frombuffer(pcm16, dtype=np.int16).astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples)))


@dataclass(frozen=True, slots=True)
class EndpointerConfig:
    """Turn-taking parameters (all in milliseconds unless named otherwise)."""

    start_ms: int = 80
    """Speech within ``start_window_ms`` needed to declare an onset."""
    start_window_ms: int = 120
    end_silence_ms: int = 600
    """Trailing silence that ends the debtor's turn."""
    min_speech_ms: int = 200
    """Utterances with less speech than this are noise and are dropped."""
    preroll_ms: int = 300
    """Audio kept from before the onset (the recognizer needs the first phoneme)."""
    max_utterance_ms: int = 15_000
    """A turn is cut here even if the debtor keeps talking."""
    echo_margin: float = 2.0
    """While the agent talks, inbound audio less than this many times louder than the
    estimated echo of the agent's voice is taken for echo, not speech."""
    echo_window_ms: int = 5000
    """How much agent-talking time the echo estimate looks back over."""
    min_level: float = 200.0
    """Frames quieter than this (RMS of PCM16) are silence whatever the VAD says."""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The debtor started talking; ``onset_ms`` is the first speech frame."""

    onset_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The debtor's turn ended; the utterance audio includes the pre-roll."""

    onset_ms: int
    end_ms: int
    """Time of the last speech frame (the true end of speech)."""
    speech_ms: int
    """Milliseconds of frames classified as speech."""
    pcm16_8k: bytes
    undrained_pcm16_8k: bytes = b""
    """The end of the utterance that ``drain()`` had not handed out yet."""


@dataclass(frozen=True, slots=True)
class SpeechDropped:
    """An onset that turned out to be noise (too little speech)."""

    onset_ms: int
    speech_ms: int = 0


VadEvent = SpeechStarted | SpeechEnded | SpeechDropped


class Endpointer:
    """Per-call state machine: feed every inbound frame in order, get turn events back."""

    def __init__(self, vad: Vad, config: EndpointerConfig | None = None) -> None:
        self.vad = vad
        self.config = config or EndpointerConfig()
        c = self.config
        self._window: deque[bool] = deque(maxlen=max(1, c.start_window_ms // FRAME_MS))
        self._preroll: deque[bytes] = deque(maxlen=max(1, c.preroll_ms // FRAME_MS))
        self._utterance: list[bytes] = []
        self._ratios: deque[float] = deque(maxlen=max(10, c.echo_window_ms // FRAME_MS))
        self._drained = 0
        self._in_speech = False
        self._onset_ms = 0
        self._last_speech_ms = 0
        self._speech_ms = 0
        self.frames_seen = 0
        """Counter (never log per frame)."""

    @property
    def in_speech(self) -> bool:
        """Whether an utterance is in progress."""
        return self._in_speech

    @property
    def speech_ms(self) -> int:
        """Speech so far in the current utterance."""
        return self._speech_ms

    def classify(self, pcm16_8k: bytes, agent_level: float = 0.0) -> bool:
        """Speech flag for one frame, gated by level and by the agent's own (echoed) audio."""
        level = rms(pcm16_8k)
        if agent_level > _AGENT_TALKING:
            # The line's echo return: inbound/agent level ratios while the agent talks and the
            # debtor does not (frames inside an utterance are left out); a high percentile is
            # the loudest echo to expect. Until there is enough evidence, assume -6 dB.
            if not self._in_speech:
                self._ratios.append(min(level / agent_level, 4.0))
            enough = len(self._ratios) >= _MIN_ECHO_EVIDENCE
            echo = float(np.percentile(self._ratios, 90)) if enough else 0.5
            if level < agent_level * echo * self.config.echo_margin:
                return False
        if level < self.config.min_level:
            return False
        return self.vad.is_speech(pcm16_8k)

    def push(self, pcm16_8k: bytes, t_ms: int, agent_level: float = 0.0) -> list[VadEvent]:
        """Feed one frame stamped ``t_ms``; ``agent_level`` is the RMS the agent is playing now."""
        if len(pcm16_8k) != BYTES_PER_FRAME:
            raise ValueError(f"a frame is {BYTES_PER_FRAME} bytes")
        self.frames_seen += 1
        speech = self.classify(pcm16_8k, agent_level)
        c = self.config
        if not self._in_speech:
            self._window.append(speech)
            self._preroll.append(pcm16_8k)
            voiced = sum(self._window) * FRAME_MS
            if voiced >= c.start_ms:
                first = len(self._window) - list(self._window).index(True)
                self._in_speech = True
                self._onset_ms = t_ms - (first - 1) * FRAME_MS
                self._last_speech_ms = t_ms
                self._speech_ms = voiced
                self._utterance = list(self._preroll)
                self._drained = 0
                self._window.clear()
                return [SpeechStarted(onset_ms=self._onset_ms)]
            return []
        self._utterance.append(pcm16_8k)
        if speech:
            self._last_speech_ms = t_ms
            self._speech_ms += FRAME_MS
        silence = t_ms - self._last_speech_ms
        too_long = t_ms - self._onset_ms >= c.max_utterance_ms
        if silence >= c.end_silence_ms or too_long:
            return [self._end()]
        return []

    def undrained_frames(self) -> int:
        """Frames of the current utterance not yet handed out by ``drain``."""
        return len(self._utterance) - self._drained if self._in_speech else 0

    def drain(self) -> bytes:
        """The utterance audio (pre-roll first) not handed out yet: stream it to the recognizer."""
        if not self._in_speech:
            return b""
        new = b"".join(self._utterance[self._drained :])
        self._drained = len(self._utterance)
        return new

    def _end(self) -> VadEvent:
        onset, speech_ms = self._onset_ms, self._speech_ms
        audio = b"".join(self._utterance)
        undrained = b"".join(self._utterance[self._drained :])
        self._drained = 0
        self._in_speech = False
        self._utterance = []
        self._preroll.clear()
        self._speech_ms = 0
        if speech_ms < self.config.min_speech_ms:
            return SpeechDropped(onset_ms=onset, speech_ms=speech_ms)
        return SpeechEnded(
            onset_ms=onset,
            end_ms=self._last_speech_ms + FRAME_MS,
            speech_ms=speech_ms,
            pcm16_8k=audio,
            undrained_pcm16_8k=undrained,
        )

    def reset(self) -> None:
        """Forget any utterance in progress (after a hang-up or a transfer)."""
        self._in_speech = False
        self._utterance = []
        self._preroll.clear()
        self._window.clear()
        self._speech_ms = 0
