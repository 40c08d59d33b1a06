"""Concurrent SIP calls through kamailio, each bound to a real CallSession (fake ASR and TTS).

sipp places the calls and streams an espeak-ng phrase ("repita por favor", then a pause, over
and over); the scripted recognizer "hears" that phrase at every end of utterance, so the agent
repeats its prompt each turn and the call never ends on the dialog's side. sipp hangs up.
``benchmarks/sip_load.py`` runs the same harness for 20 calls x 60 s and prints the figures.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.call.speech import espeak
from tests.conftest import DIALPLANS, FIXTURES
from tests.model_gate import need
from tests.telephony import sipstack as ss
from voiceagent.asr.fake import FakeRecognizer
from voiceagent.audio.g711 import ulaw_to_pcm16
from voiceagent.call.actions import JsonlSink
from voiceagent.call.clock import TransportClock
from voiceagent.call.session import CallResult, CallSession, Pools
from voiceagent.dialog.account import Account
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.loader import load_dialplan_cached
from voiceagent.telephony.pyvoip import SipConfig, SipEndpoint
from voiceagent.telephony.sipcall import SipCall
from voiceagent.tts.cache import PromptCache
from voiceagent.tts.fake import FakeSynthesizer
from voiceagent.vad import Endpointer, WebRtcVad

pytestmark = [pytest.mark.sip, pytest.mark.slow]

PHRASE = "repita por favor"
PER_CALL_THREADS = ("RTP Receiver", "RTP Transmitter", "Phone Call")
LOUD_RMS = 500.0


class MediaSink:
    """The callers' media socket, read on its own thread (so the agent's event loop does not
    skew arrival times): per agent RTP source, arrival times and loud packet count."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.arrivals: dict[tuple[str, int], list[float]] = {}
        self.loud: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-media-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            self.arrivals.setdefault(addr, []).append(time.monotonic())
            if len(data) > 12 and data[1] & 0x7F == 0:
                pcm = np.frombuffer(ulaw_to_pcm16(data[12:]), np.int16).astype(np.float64)
                if float(np.sqrt(np.mean(pcm**2))) > LOUD_RMS:
                    self.loud[addr] = self.loud.get(addr, 0) + 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def jitter_ms(self) -> list[float]:
        """|inter-arrival - 20 ms| for every packet after each stream's first."""
        out: list[float] = []
        for times in self.arrivals.values():
            out += [abs((b - a) * 1000 - 20) for a, b in zip(times, times[1:], strict=False)]
        return out


@dataclass
class LoadReport:
    calls: int
    seconds: float
    sipp_rc: int
    sipp_output: str
    invites_200: int
    byes_sent: int
    byes_ok: int
    results: list[CallResult]
    sip_calls: list[SipCall]
    loud_by_stream: list[int]
    jitter_ms: list[float]
    cpu_s: float
    wall_s: float
    rss_peak_mb: float
    rss_before_mb: float
    threads_before: int
    threads_after: int
    call_threads_left: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    def latencies_ms(self) -> list[int]:
        return [t.latency_ms for r in self.results for t in r.turns if t.latency_ms is not None]

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms())
        jit = sorted(self.jitter_ms)
        call_min = self.calls * self.seconds / 60

        def q(xs: list[Any], p: float) -> float:
            return float(xs[min(len(xs) - 1, int(p * len(xs)))]) if xs else float("nan")

        return {
            "calls": self.calls,
            "call_s": self.seconds,
            "sipp_rc": self.sipp_rc,
            "answered_200": self.invites_200,
            "bye_sent_by_sipp": self.byes_sent,
            "bye_200_ok": self.byes_ok,
            "sessions_ended": len(self.results),
            "ended_by": sorted({r.ended_by for r in self.results}),
            "turns": len(lat),
            "turn_latency_p50_ms": q(lat, 0.5),
            "turn_latency_p95_ms": q(lat, 0.95),
            "frames_in_min": min((c.stats.frames_in for c in self.sip_calls), default=0),
            "loud_packets_out_min": min(self.loud_by_stream, default=0),
            "tx_jitter_p50_ms": round(q(jit, 0.5), 3),
            "tx_jitter_p99_ms": round(q(jit, 0.99), 3),
            "tx_jitter_max_ms": round(max(jit, default=float("nan")), 3),
            "cpu_s": round(self.cpu_s, 2),
            "cpu_s_per_call_minute": round(self.cpu_s / call_min, 2) if call_min else None,
            "cpu_share_of_core": round(self.cpu_s / self.wall_s, 3),
            "rss_before_mb": round(self.rss_before_mb, 1),
            "rss_peak_mb": round(self.rss_peak_mb, 1),
            "threads_before": self.threads_before,
            "threads_after": self.threads_after,
        }


def _received(messages: str, cseq: str) -> int:
    """Distinct calls for which sipp received a 200 OK with this CSeq (retransmits once)."""
    call_ids = set()
    for block in messages.split("\n-----------------------------------------------"):
        if "message received" in block and "SIP/2.0 200 OK" in block and cseq in block:
            call_ids.add(next((ln for ln in block.splitlines() if ln.startswith("Call-ID")), ""))
    return len(call_ids)


def caller_wav(workdir: Path, seconds: float) -> None:
    """The phrase, then 2.5 s of silence, repeated for ``seconds`` (mu-law WAV for sipp)."""
    speech = np.frombuffer(espeak(PHRASE), np.int16)
    pause = np.zeros(int(2.5 * 8000), np.int16)
    unit = np.concatenate([np.zeros(4000, np.int16), speech, pause])
    reps = int(np.ceil(seconds * 8000 / len(unit)))
    ss.write_ulaw_wav(workdir / "caller.wav", np.tile(unit, reps).tobytes())


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def call_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(PER_CALL_THREADS)]


def run_load(workdir: Path, calls: int, seconds: float) -> LoadReport:
    """Kamailio + the endpoint + a CallSession per call; sipp places ``calls`` calls at once."""
    workdir.mkdir(parents=True, exist_ok=True)
    caller_wav(workdir, seconds + 2)
    return asyncio.run(_run_load(workdir, calls, seconds))


async def _run_load(workdir: Path, calls: int, seconds: float) -> LoadReport:
    plan = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
    account = Account.model_validate(
        json.loads((FIXTURES / "accounts" / "co-early.json").read_text())
    )
    pools = Pools.create()
    voice = PromptCache(workdir / "cache", FakeSynthesizer("es"))
    results: list[CallResult] = []
    sip_calls: list[SipCall] = []

    async def handler(call: SipCall) -> None:
        sip_calls.append(call)
        session = CallSession(
            call_id=call.call_id,
            conversation=Conversation(plan, account, date(2026, 11, 18)),
            transport=call,
            recognizer=FakeRecognizer([PHRASE] * 1000),
            voice=voice,
            endpointer=Endpointer(WebRtcVad(2)),
            pools=pools,
            sink=JsonlSink(workdir / "crm.jsonl"),
            clock=TransportClock(),
        )
        results.append(await session.run())

    with ss.run_kamailio(workdir / "kamailio") as kam:
        low, high = ss.free_rtp_range(8 * calls + 16)
        cfg = SipConfig(
            registrar_host="127.0.0.1",
            registrar_port=kam.port,
            user="agent",
            password=ss.PASSWORD,
            bind_address="127.0.0.1",
            sip_port=ss.free_udp_port(),
            rtp_port_low=low,
            rtp_port_high=high,
            max_calls=calls + 4,
        )
        endpoint = SipEndpoint(cfg, handler)
        sink = MediaSink()
        sink_port = sink.port
        rss_peak = 0.0
        try:
            await asyncio.wait_for(endpoint.start(), 10)
            threads_before = threading.active_count()  # the sink thread included
            rss_before = _rss_mb()
            cpu0, t0 = _cpu_s(), time.monotonic()
            sipp = await ss.start_sipp(
                workdir,
                "uac_stream",
                remote=f"127.0.0.1:{kam.port}",
                calls=calls,
                limit=calls,
                rate=50,
                pause_ms=int(seconds * 1000),
                keys={"rtpsink": str(sink_port)},
                timeout_s=seconds + 30,
            )
            waiter = asyncio.ensure_future(sipp.result())
            while not waiter.done():
                rss_peak = max(rss_peak, _rss_mb())
                await asyncio.wait({waiter}, timeout=1.0)
            result = waiter.result()
            for _ in range(100):
                if len(results) >= len(sip_calls) and not endpoint.active_calls:
                    break
                await asyncio.sleep(0.05)
            cpu_s, wall_s = _cpu_s() - cpu0, time.monotonic() - t0
            for _ in range(60):
                if not call_threads():
                    break
                await asyncio.sleep(0.05)
            left = call_threads()
            threads_after = threading.active_count()
        finally:
            sink.close()
            await asyncio.wait_for(endpoint.stop(), 10)
            pools.shutdown()
    return LoadReport(
        calls=calls,
        seconds=seconds,
        sipp_rc=result.rc,
        sipp_output=result.output,
        invites_200=_received(result.messages, "CSeq: 1 INVITE"),
        byes_sent=result.count(r"^BYE sip:"),
        byes_ok=_received(result.messages, "CSeq: 2 BYE"),
        results=results,
        sip_calls=sip_calls,
        loud_by_stream=list(sink.loud.get(addr, 0) for addr in sink.arrivals),
        jitter_ms=sink.jitter_ms(),
        cpu_s=cpu_s,
        wall_s=wall_s,
        rss_peak_mb=rss_peak,
        rss_before_mb=rss_before,
        threads_before=threads_before,
        threads_after=threads_after,
        call_threads_left=left,
    )


def test_twenty_concurrent_sip_calls_with_call_sessions(tmp_path: Path) -> None:
    need(ss.have_tools(), "kamailio and sipp (apt-get install kamailio sip-tester)")
    n, seconds = 20, 15.0  # the greeting alone takes 8 s: the first turn ends at ~12 s
    report = run_load(tmp_path, n, seconds)
    figures = report.summary()
    assert report.sipp_rc == 0, report.sipp_output[-1500:]
    assert figures["answered_200"] == n, figures
    assert figures["bye_sent_by_sipp"] == n, figures
    assert figures["bye_200_ok"] == n, figures
    assert len(report.results) == n, figures
    assert {r.ended_by for r in report.results} == {"debtor"}, figures
    assert {c.ended_by for c in report.sip_calls} == {"remote"}
    # Every call heard the caller and answered with audio.
    expected_frames = seconds * 50
    assert figures["frames_in_min"] >= 0.9 * expected_frames, figures
    assert len(report.loud_by_stream) == n
    assert figures["loud_packets_out_min"] >= 25, figures
    assert all(len(r.turns) >= 1 for r in report.results), [len(r.turns) for r in report.results]
    # Nothing per call outlives its call; only the endpoint's bounded pools may remain.
    assert report.call_threads_left == []
    assert report.threads_after <= report.threads_before + 4, figures
