"""A simulated debtor on the other end of the line, speaking a chat-style script.

Script lines are those of ``voiceagent chat``: text is spoken (by a voice different from the
agent's) once the agent has finished talking and a natural pause has passed; ``<silence>`` says
nothing that turn; ``<dtmf 1234>`` presses keys; ``<hangup>`` hangs up. ``<barge 800> text``
starts speaking 800 ms after the agent starts talking, over the agent (barge-in tests).
``<audio a.wav b.wav>`` plays recordings joined with short gaps (e.g. a person saying digits).
The agent's own audio can be echoed back attenuated, as real lines do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voiceagent.audio.format import BYTES_PER_FRAME, FRAME_MS, SILENCE_FRAME
from voiceagent.telephony.base import Inbound
from voiceagent.vad import rms

_BARGE = re.compile(r"^<barge\s+(\d+)>\s*(.*)$")
_DTMF = re.compile(r"^<dtmf\s+([0-9*#]+)>$")
_AUDIO = re.compile(r"^<audio\s+([^>]+)>$")
_GAP = bytes(2 * 8000 * 150 // 1000)  # 150 ms between joined recordings
_AGENT_TALKING_RMS = 300.0


@dataclass
class _Line:
    kind: str
    """``say``, ``silence``, ``dtmf`` or ``hangup``."""
    text: str = ""
    barge_after_ms: int | None = None
    pcm16_8k: bytes = b""
    files: tuple[str, ...] = ()


def parse_script(lines: list[str]) -> list[_Line]:
    """Parse chat-script lines (blank lines are silence, as in ``voiceagent chat``)."""
    out: list[_Line] = []
    for raw in lines:
        line = raw.strip()
        if not line or line == "<silence>":
            out.append(_Line("silence"))
        elif line == "<hangup>":
            out.append(_Line("hangup"))
        elif m := _DTMF.match(line):
            out.append(_Line("dtmf", m.group(1)))
        elif m := _AUDIO.match(line):
            files = tuple(m.group(1).split())
            out.append(_Line("say", f"<audio {' '.join(files)}>", files=files))
        elif m := _BARGE.match(line):
            out.append(_Line("say", m.group(2), barge_after_ms=int(m.group(1))))
        else:
            out.append(_Line("say", line))
    return out


def _join_recordings(files: tuple[str, ...]) -> bytes:
    from voiceagent.audio.resample import resample_pcm16
    from voiceagent.audio.wav import read_wav

    parts = []
    for name in files:
        wav = read_wav(name)
        pcm = wav.pcm16
        if wav.channels != 1:
            pcm = np.frombuffer(pcm, np.int16)[:: wav.channels].tobytes()
        if wav.rate_hz != 8000:
            pcm = resample_pcm16(pcm, wav.rate_hz, 8000)
        parts.append(pcm)
    return _GAP.join(parts)


def _beep(hz: float = 1000.0, duration_ms: int = 500) -> bytes:
    """A voicemail beep (a pure tone), PCM16 8 kHz."""
    t = np.arange(8000 * duration_ms // 1000) / 8000
    return (6000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


class SimulatedDebtor:
    """A CallTransport whose far end is a scripted, speaking debtor (no network)."""

    def __init__(
        self,
        lines: list[str],
        reply_pause_ms: int = 700,
        echo_gain: float = 0.0,
        echo_delay_ms: int = 40,
        speaks_first: bool = False,
        beep_after_first: bool = False,
        transfer_fails: bool = False,
    ) -> None:
        self.script = parse_script(lines)
        self.speaks_first = speaks_first
        """An answered outbound call: the first line ("¿Aló?", a voicemail greeting) is said
        ``reply_pause_ms`` after the answer, before the agent says anything."""
        self.transfer_fails = transfer_fails
        """Every human queue is busy: transfers are refused."""
        self.beep_after_first = beep_after_first
        """An answering machine: a 1 kHz beep follows the first line (its greeting)."""
        self.reply_pause_ms = reply_pause_ms
        self.echo_gain = echo_gain
        self._echo: list[bytes] = [SILENCE_FRAME] * max(1, echo_delay_ms // FRAME_MS)
        self._next = 0
        self._speaking: bytes = b""
        self._agent_talked = False
        self._agent_silent_ms = 0
        self._agent_talking_ms = 0
        self._hangup = False
        self._dtmf = ""
        self.ended_by_agent: str | None = None
        self.transferred_to: str | None = None
        self.spoken_at_ms: list[int] = []
        """Call time at which each spoken line started (for latency and barge-in checks)."""
        self.t_ms = 0

    def prepare(self, speak: Callable[[str], bytes]) -> None:
        """Synthesize every spoken line up front (blocking; run it on a pool)."""
        for line in self.script:
            if line.files:
                line.pcm16_8k = _join_recordings(line.files)
            elif line.kind == "say" and line.text:
                line.pcm16_8k = speak(line.text)
        if self.beep_after_first and self.script and self.script[0].kind == "say":
            first = self.script[0]
            first.pcm16_8k += _GAP + _beep()

    async def read(self) -> Inbound:
        """The debtor's next 20 ms."""
        if self._hangup:
            return Inbound(SILENCE_FRAME, hangup=True)
        self._maybe_start_turn()
        dtmf, self._dtmf = self._dtmf, ""
        frame = SILENCE_FRAME
        if self._speaking:
            frame = self._speaking[:BYTES_PER_FRAME].ljust(BYTES_PER_FRAME, b"\0")
            self._speaking = self._speaking[BYTES_PER_FRAME:]
            if not self._speaking:
                self._agent_talked = False  # done talking: now wait for the agent's answer
        frame = self._mix_echo(frame)
        self.t_ms += FRAME_MS
        return Inbound(frame, dtmf=dtmf)

    def _mix_echo(self, frame: bytes) -> bytes:
        echo = self._echo.pop(0)
        if self.echo_gain <= 0.0:
            return frame
        mixed = np.frombuffer(frame, np.int16).astype(np.int32)
        mixed += (np.frombuffer(echo, np.int16).astype(np.float32) * self.echo_gain).astype(
            np.int32
        )
        return np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()

    async def write(self, pcm16_8k: bytes) -> None:
        """Hear one frame of the agent."""
        self._echo.append(pcm16_8k)
        if rms(pcm16_8k) >= _AGENT_TALKING_RMS:
            self._agent_talked = True
            self._agent_silent_ms = 0
            self._agent_talking_ms += FRAME_MS
        else:
            self._agent_silent_ms += FRAME_MS
            if self._agent_silent_ms > 300:
                self._agent_talking_ms = 0

    def _maybe_start_turn(self) -> None:
        if self._speaking or self._next >= len(self.script):
            if self._next >= len(self.script) and not self._speaking and self._agent_done():
                self._hangup = True  # the script is over: the debtor hangs up
            return
        line = self.script[self._next]
        if line.barge_after_ms is not None:
            if self._agent_talking_ms >= line.barge_after_ms:
                self._start(line)
            return
        if not self._agent_done():
            return
        self._start(line)

    def _agent_done(self) -> bool:
        if self.speaks_first and self._next == 0:
            return self.t_ms >= self.reply_pause_ms
        return self._agent_talked and self._agent_silent_ms >= self.reply_pause_ms

    def _start(self, line: _Line) -> None:
        self._next += 1
        self._agent_talked = False  # the next turn waits for the agent to speak again
        self.spoken_at_ms.append(self.t_ms)
        if line.kind == "say":
            self._speaking = line.pcm16_8k
        elif line.kind == "dtmf":
            self._dtmf = line.text
        elif line.kind == "hangup":
            self._hangup = True

    async def hangup(self) -> None:
        """The agent hung up."""
        self.ended_by_agent = "hangup"

    async def transfer(self, target: str) -> bool:
        """The agent transferred the call (refused when ``transfer_fails``)."""
        if self.transfer_fails:
            return False
        self.ended_by_agent = "transfer"
        self.transferred_to = target
        return True
