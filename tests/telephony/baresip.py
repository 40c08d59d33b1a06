"""A headless baresip softphone for tests: a WAV as its microphone, what it hears dumped to WAV.

baresip 1.0 (Debian bookworm) has no sound card here: ``aufile`` plays a WAV file as the
microphone (and ends the call with a BYE when the file ends, through the ``menu`` module),
``aubridge`` is a player that goes nowhere, and ``sndfile`` dumps the decoded audio the peer
hears as ``dump-<time>-dec.wav`` (8 kHz mono for PCMU). Commands go through ``ctrl_tcp``
(netstring-framed JSON), which also reports call events (``CALL_ESTABLISHED``,
``CALL_CLOSED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.telephony import sipstack as ss

MODULES = Path("/usr/lib/baresip/modules")
CALLER = "5550100"
"""The softphone's SIP user (its caller ID)."""


def have_baresip() -> bool:
    return shutil.which("baresip") is not None and all(
        (MODULES / f"{name}.so").exists()
        for name in ("aufile", "aubridge", "sndfile", "g711", "ctrl_tcp", "menu", "account")
    )


def write_wav(path: Path, pcm16_8k: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm16_8k.astype(np.int16).tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2), path
        return np.frombuffer(w.readframes(w.getnframes()), np.int16), w.getframerate()


def log_tail(workdir: Path, chars: int = 3000) -> str:
    path = workdir / "baresip.log"
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(workdir: Path, mic: Path, sip_port: int, ctrl_port: int) -> str:
    rtp_low, rtp_high = ss.free_rtp_range(4)
    return "\n".join(
        [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{sip_port}",
            f"audio_source aufile,{mic}",
            "audio_player aubridge,nowhere",
            "audio_alert aubridge,nowhere",
            "ausrc_srate 8000",
            "auplay_srate 8000",
            f"rtp_ports {rtp_low}-{rtp_high}",
            f"module_path {MODULES}",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            f"snd_path {workdir}",
            "module_app account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
            "",
        ]
    )


@dataclass
class Baresip:
    workdir: Path
    proc: subprocess.Popen[bytes]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    events: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def command(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self.writer.write(str(len(body)).encode() + b":" + body + b",")

    async def pump(self) -> None:
        """Read ctrl_tcp netstrings into ``events`` and ``responses`` until EOF."""
        buf = b""
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            buf += data
            while b":" in buf:
                head, _, rest = buf.partition(b":")
                size = int(head)
                if len(rest) < size + 1:
                    break
                message = json.loads(rest[:size])
                buf = rest[size + 1 :]
                (self.events if message.get("event") else self.responses).append(message)
                self._changed.set()

    async def wait_event(self, kind: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events:
                if event.get("type") == kind:
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [e.get("type") for e in self.events]
                raise AssertionError(
                    f"baresip: no {kind} in {timeout_s}s (saw {seen})\n{self.log()}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def log(self) -> str:
        return log_tail(self.workdir)

    def heard(self) -> tuple[np.ndarray, int]:
        """What the softphone heard (the decoded stream ``sndfile`` dumped)."""
        dumps = sorted(self.workdir.glob("dump-*-dec.wav"))
        assert len(dumps) == 1, f"expected one decoded dump, found {dumps}\n{self.log()}"
        return read_wav(dumps[0])


def launch(workdir: Path, mic: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Write the config, start baresip; its process and ctrl_tcp port."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "conf"
    conf.mkdir(exist_ok=True)
    sip_port, ctrl_port = ss.free_udp_port(), free_tcp_port()
    (conf / "config").write_text(config_text(workdir, mic, sip_port, ctrl_port))
    aor = f"<sip:{CALLER}@127.0.0.1:{sip_port}>;regint=0;audio_codecs=PCMU"
    (conf / "accounts").write_text(aor + "\n")
    (conf / "contacts").write_text("")
    with (workdir / "baresip.log").open("wb") as log:
        proc = subprocess.Popen(
            ["baresip", "-f", str(conf), "-v"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
    return proc, ctrl_port


@contextlib.asynccontextmanager
async def run_baresip(workdir: Path, mic: Path, timeout_s: float = 5.0) -> AsyncIterator[Baresip]:
    """Start baresip with ``mic`` as its microphone; yield once ctrl_tcp answers; always kill."""
    proc, ctrl_port = launch(workdir, mic)
    pump: asyncio.Task[None] | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", ctrl_port)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"baresip did not start:\n{log_tail(workdir)}") from None
                await asyncio.sleep(0.05)
        phone = Baresip(workdir, proc, reader, writer)
        pump = asyncio.create_task(phone.pump())
        yield phone
        if proc.poll() is None:
            phone.command("quit")
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, 3)
    finally:
        if pump is not None:
            pump.cancel()
        if writer is not None:
            writer.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=3)
