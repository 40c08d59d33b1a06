"""The SIP endpoint against real peers: kamailio as registrar/proxy, sipp as caller and callee."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.model_gate import need
from tests.telephony import sipstack as ss
from tests.telephony.sipstack import sip_agent as agent
from voiceagent.telephony.pyvoip import DialResult, SipEndpoint
from voiceagent.telephony.sipcall import SipCall

pytestmark = [pytest.mark.sip]

PER_CALL_THREADS = ("RTP Receiver", "RTP Transmitter", "Phone Call")


@pytest.fixture(scope="module")
def kam(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Real SIP peers are required in CI like models are: a missing one fails, never skips.
    need(ss.have_tools(), "kamailio and sipp (apt-get install kamailio sip-tester)")
    with ss.run_kamailio(tmp_path_factory.mktemp("kamailio")) as kamailio:
        yield kamailio


def per_call_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(PER_CALL_THREADS)]


async def wait_no_call_threads(timeout_s: float = 2.0) -> list[str]:
    for _ in range(int(timeout_s / 0.05)):
        if not per_call_threads():
            break
        await asyncio.sleep(0.05)
    return per_call_threads()


class Recorder:
    """A call handler that keeps what it read, optionally speaking first."""

    def __init__(self, say: np.ndarray | None = None, hangup_after_s: float | None = None):
        self.say = say
        self.hangup_after_s = hangup_after_s
        self.calls: list[SipCall] = []
        self.frames: list[bytes] = []
        self.dtmf = ""
        self.hangup_seen = asyncio.Event()

    async def __call__(self, call: SipCall) -> None:
        self.calls.append(call)
        if self.say is not None:
            await call.write(self.say.tobytes())
        started = time.monotonic()
        while True:
            inbound = await call.read()
            if inbound.hangup:
                self.hangup_seen.set()
                return
            self.frames.append(inbound.pcm16_8k)
            self.dtmf += inbound.dtmf
            if self.hangup_after_s and time.monotonic() - started > self.hangup_after_s:
                await call.hangup()
                return

    def audio(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.frames), np.int16)


def caller_audio(workdir: Path) -> np.ndarray:
    silence = np.zeros(2400, np.int16)
    src = np.concatenate([silence, ss.speechlike_signal(2.0), silence])
    ss.write_ulaw_wav(workdir / "caller.wav", src.tobytes())
    return src


async def test_inbound_call_answered_fast_with_clean_audio_both_ways(
    kam: ss.Kamailio, tmp_path: Path
) -> None:
    source = caller_audio(tmp_path)
    prompt = ss.speechlike_signal(1.5, seed=11)
    rec = Recorder(say=prompt)
    async with agent(kam, rec) as endpoint, ss.rtp_sink() as (sink, sink_port):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_stream",
            remote=f"127.0.0.1:{kam.port}",
            pause_ms=3500,
            keys={"rtpsink": str(sink_port)},
        )
        result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]
        await asyncio.wait_for(rec.hangup_seen.wait(), 2)
        answer_ms = result.ms_between(r"^INVITE ", r"^SIP/2.0 200")
        assert answer_ms < 200, f"INVITE -> 200 OK took {answer_ms:.0f} ms"
        (call,) = rec.calls
        assert (call.direction, call.caller_id) == ("inbound", "5550100")
        assert call.ended_by == "remote"
        assert call.stats.frames_in >= 0.9 * len(source) / 160  # sipp's packets all arrived
        # What sipp streamed arrives in read() frames, as clean as a G.711 round trip allows.
        snr_in = ss.snr_db(source, rec.audio())
        assert snr_in >= 30, f"caller -> agent SNR {snr_in:.1f} dB"
        # What the agent wrote reaches the far end's media socket (the SDP of sipp's INVITE).
        snr_out = ss.snr_db(prompt, sink.audio())
        assert snr_out >= 30, f"agent -> caller SNR {snr_out:.1f} dB"
        assert {p.pt for p in sink.packets} == {0}
        assert await wait_no_call_threads() == []
        assert endpoint.active_calls == 0


async def test_bind_address_differs_from_advertised_address(
    kam: ss.Kamailio, tmp_path: Path
) -> None:
    source = caller_audio(tmp_path)
    rec = Recorder()
    overrides = {"bind_address": "0.0.0.0", "advertised_address": "127.0.0.1"}
    async with agent(kam, rec, **overrides), ss.rtp_sink() as (sink, sink_port):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_stream",
            remote=f"127.0.0.1:{kam.port}",
            pause_ms=3000,
            keys={"rtpsink": str(sink_port)},
        )
        result = await sipp.result()
        await asyncio.wait_for(rec.hangup_seen.wait(), 2)
    assert result.rc == 0, result.output[-1500:]
    assert "0.0.0.0" not in result.messages  # Via, Contact and SDP carry the advertised one
    assert result.count(r"^c=IN IP4 127\.0\.0\.1") == 2  # sipp's offer and the agent's answer
    assert ss.snr_db(source, rec.audio()) >= 30
    assert len(sink.packets) > 100


async def test_flush_stops_far_end_audio_within_100ms(kam: ss.Kamailio, tmp_path: Path) -> None:
    caller_audio(tmp_path)
    flushed_at: list[float] = []

    async def handler(call: SipCall) -> None:
        await call.write(ss.tone(3.0).tobytes())
        for _ in range(25):  # 0.5 s of the agent's own clock
            await call.read()
        call.flush()
        flushed_at.append(time.monotonic())
        assert call.queued_ms == 0
        while not (await call.read()).hangup:
            pass

    async with agent(kam, handler), ss.rtp_sink() as (sink, sink_port):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_stream",
            remote=f"127.0.0.1:{kam.port}",
            pause_ms=2000,
            keys={"rtpsink": str(sink_port)},
        )
        result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]
    loud = [p.t for p in sink.packets if np.sqrt(np.mean(p.pcm16.astype(float) ** 2)) > 1000]
    assert len(loud) >= 15, "the tone played for at least 300 ms before the flush"
    stop_ms = (loud[-1] - flushed_at[0]) * 1000
    assert stop_ms <= 100, f"tone still heard {stop_ms:.0f} ms after flush()"
    after = [p for p in sink.packets if p.t > flushed_at[0] + 0.1]
    assert len(after) > 20, "RTP (silence) keeps flowing after the flush"


async def test_rfc2833_dtmf_reaches_inbound(kam: ss.Kamailio, tmp_path: Path) -> None:
    (tmp_path / "dtmf1.pcap").symlink_to(ss.dtmf_pcap("1"))
    (tmp_path / "dtmf2.pcap").symlink_to(ss.dtmf_pcap("pound"))
    rec = Recorder()
    async with agent(kam, rec), ss.rtp_sink() as (_sink, sink_port):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_dtmf",
            remote=f"127.0.0.1:{kam.port}",
            pause_ms=1000,
            keys={"rtpsink": str(sink_port)},
        )
        result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]
        await asyncio.wait_for(rec.hangup_seen.wait(), 2)
    assert rec.dtmf == "1#"


async def test_agent_hangup_sends_bye_and_releases_threads(
    kam: ss.Kamailio, tmp_path: Path
) -> None:
    caller_audio(tmp_path)
    rec = Recorder(hangup_after_s=0.6)
    async with agent(kam, rec) as endpoint, ss.rtp_sink() as (_sink, sink_port):
        baseline = threading.active_count()
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_wait_bye",
            remote=f"127.0.0.1:{kam.port}",
            keys={"rtpsink": str(sink_port)},
        )
        result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]  # sipp saw our BYE
        assert result.count(r"^BYE sip:sipp@") == 1
        (call,) = rec.calls
        assert call.ended_by == "agent"
        assert (await call.read()).hangup
        assert await wait_no_call_threads() == []
        assert endpoint.active_calls == 0
        # Only the endpoint's bounded SIP pool may have grown (4 workers at most).
        assert threading.active_count() <= baseline + 4


async def test_calls_beyond_the_limit_get_busy_here(kam: ss.Kamailio, tmp_path: Path) -> None:
    caller_audio(tmp_path)
    rec = Recorder()
    async with agent(kam, rec, max_calls=2), ss.rtp_sink() as (_sink, sink_port):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_maybe_busy",
            remote=f"127.0.0.1:{kam.port}",
            calls=3,
            limit=3,
            rate=50,
            pause_ms=1500,
            keys={"rtpsink": str(sink_port)},
        )
        result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]
    assert len(rec.calls) == 2
    assert result.count(r"^SIP/2\.0 486 Busy Here") >= 1
    assert result.count(r"^SIP/2\.0 200 OK\s*$") >= 2


async def test_pcma_only_reinvite_is_answered_with_pcma(kam: ss.Kamailio, tmp_path: Path) -> None:
    source = caller_audio(tmp_path)
    prompt = ss.speechlike_signal(4.0, seed=5)
    rec = Recorder(say=prompt)
    async with agent(kam, rec), ss.rtp_sink() as (first, port1), ss.rtp_sink() as (second, port2):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_reinvite_pcma",
            remote=f"127.0.0.1:{kam.port}",
            pause_ms=1500,
            keys={"rtpsink": str(port1), "rtpsink2": str(port2)},
        )
        result = await sipp.result()
        await asyncio.wait_for(rec.hangup_seen.wait(), 2)
    assert result.rc == 0, result.output[-1500:]  # the 200 to the re-INVITE offered PCMA
    assert {p.pt for p in first.packets} == {0}
    assert {p.pt for p in second.packets} == {8}
    assert len(second.packets) > 40
    # Both halves of the prompt are clean: PCMU before the re-INVITE, PCMA after it.
    n_first = len(first.audio())
    assert ss.snr_db(prompt[:n_first], first.audio()) >= 30
    assert ss.snr_db(prompt[n_first : n_first + len(second.audio())], second.audio()) >= 30
    assert ss.snr_db(source, rec.audio()) >= 30


async def dial(endpoint: SipEndpoint, uas: ss.Sipp, ring_timeout_s: float = 5.0) -> Any:
    await uas.listening()
    return await asyncio.wait_for(endpoint.dial(f"p{uas.port}", ring_timeout_s), 15)


async def test_dial_answered_then_hangup(kam: ss.Kamailio, tmp_path: Path) -> None:
    async with agent(kam, None) as endpoint, ss.rtp_sink() as (sink, sink_port):
        uas = await ss.start_sipp(tmp_path, "uas_answer", keys={"rtpsink": str(sink_port)})
        call = await dial(endpoint, uas)
        assert isinstance(call, SipCall), call
        assert call.direction == "outbound"
        await call.write(ss.tone(0.6).tobytes())
        for _ in range(40):
            await call.read()
        await call.hangup()
        result = await uas.result()
    assert result.rc == 0, result.output[-1500:]  # sipp got the ACK and our BYE
    ack_ms = result.ms_between(r"^SIP/2\.0 200 OK", r"^ACK ")
    assert ack_ms < 100, f"ACK came {ack_ms:.0f} ms after 200 OK"
    assert ss.snr_db(ss.tone(0.6), sink.audio()) >= 30


async def test_call_without_inbound_media_times_out_with_bye(
    kam: ss.Kamailio, tmp_path: Path
) -> None:
    async with agent(kam, None, media_timeout_s=1.0) as endpoint:
        uas = await ss.start_sipp(tmp_path, "uas_answer", keys={"rtpsink": "9"})  # sends no RTP
        call = await dial(endpoint, uas)
        assert isinstance(call, SipCall), call
        started = time.monotonic()
        while not (await asyncio.wait_for(call.read(), 1)).hangup:
            pass
        waited = time.monotonic() - started
        result = await uas.result()
    assert call.ended_by == "media_timeout"
    assert 0.9 <= waited <= 1.5
    assert result.rc == 0, result.output[-1500:]  # sipp got the BYE


async def test_dial_busy(kam: ss.Kamailio, tmp_path: Path) -> None:
    async with agent(kam, None) as endpoint:
        uas = await ss.start_sipp(tmp_path, "uas_busy")
        assert await dial(endpoint, uas) is DialResult.BUSY
        result = await uas.result()
        assert endpoint.active_calls == 0
    assert result.rc == 0, result.output[-1500:]


async def test_dial_no_answer_cancels_after_ring_timeout(kam: ss.Kamailio, tmp_path: Path) -> None:
    async with agent(kam, None) as endpoint:
        uas = await ss.start_sipp(tmp_path, "uas_noanswer")
        await uas.listening()
        started = time.monotonic()
        outcome = await asyncio.wait_for(endpoint.dial(f"p{uas.port}", 1.0), 10)
        elapsed = time.monotonic() - started
        result = await uas.result()
        assert endpoint.active_calls == 0
    assert outcome is DialResult.NO_ANSWER
    assert 1.0 <= elapsed < 1.5
    assert result.rc == 0, result.output[-1500:]  # sipp got CANCEL and the ACK for its 487
    assert result.count(r"^CANCEL sip:") == 1


async def test_blind_transfer_sends_refer(kam: ss.Kamailio, tmp_path: Path) -> None:
    proxy = f"127.0.0.1:{kam.port}"
    async with agent(kam, None, outbound_proxy=proxy) as endpoint, ss.rtp_sink() as (_, port):
        uas = await ss.start_sipp(tmp_path, "uas_refer", keys={"rtpsink": str(port)})
        call = await dial(endpoint, uas)
        assert isinstance(call, SipCall), call
        await asyncio.wait_for(call.transfer("queue7"), 10)
        result = await uas.result()
    assert result.rc == 0, result.output[-1500:]  # Refer-To matched, NOTIFY answered, BYE seen
    assert result.count(r"^Refer-To: <sip:queue7@127\.0\.0\.1:\d+>") == 1
    assert call.transfer_result is not None
    assert call.transfer_result.refer_status == 202
    assert call.transfer_result.notify_status == 200
    assert call.ended_by == "transfer"


async def test_refused_transfer_keeps_the_call_up(kam: ss.Kamailio, tmp_path: Path) -> None:
    proxy = f"127.0.0.1:{kam.port}"
    async with agent(kam, None, outbound_proxy=proxy) as endpoint, ss.rtp_sink() as (_, port):
        uas = await ss.start_sipp(tmp_path, "uas_refer_refused", keys={"rtpsink": str(port)})
        call = await dial(endpoint, uas)
        assert isinstance(call, SipCall), call
        assert await asyncio.wait_for(call.transfer("queue7"), 10) is False
        assert call.transfer_result is not None and call.transfer_result.refer_status == 603
        assert not call.ended  # the agent can still talk (and offer a callback)
        await call.hangup()
        result = await uas.result()
    assert result.rc == 0, result.output[-1500:]  # the REFER was refused, then our BYE came


async def test_call_session_greets_a_sip_caller_until_they_hang_up(
    kam: ss.Kamailio, tmp_path: Path
) -> None:
    """End to end: a real CallSession on an inbound SIP call (fake ASR and TTS engines)."""
    import json
    from datetime import date

    from tests.conftest import DIALPLANS, FIXTURES
    from voiceagent.asr.fake import FakeRecognizer
    from voiceagent.call.actions import JsonlSink
    from voiceagent.call.clock import TransportClock
    from voiceagent.call.session import CallResult, CallSession, Pools
    from voiceagent.dialog.account import Account
    from voiceagent.dialog.conversation import Conversation
    from voiceagent.dialog.loader import load_dialplan_cached
    from voiceagent.tts.cache import PromptCache
    from voiceagent.tts.fake import FakeSynthesizer
    from voiceagent.vad import Endpointer, WebRtcVad

    plan = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
    account = Account.model_validate(
        json.loads((FIXTURES / "accounts" / "co-early.json").read_text())
    )
    ss.write_ulaw_wav(tmp_path / "caller.wav", bytes(2 * 8000 * 3))  # the debtor says nothing
    pools = Pools.create()
    results: list[CallResult] = []

    async def handler(call: SipCall) -> None:
        session = CallSession(
            call_id=call.call_id,
            conversation=Conversation(plan, account, date(2026, 11, 18)),
            transport=call,
            recognizer=FakeRecognizer([]),
            voice=PromptCache(tmp_path / "cache", FakeSynthesizer("es")),
            endpointer=Endpointer(WebRtcVad(2)),
            pools=pools,
            sink=JsonlSink(tmp_path / "crm.jsonl"),
            clock=TransportClock(),  # SipCall.read() paces the call
        )
        results.append(await session.run())

    try:
        async with agent(kam, handler), ss.rtp_sink() as (sink, sink_port):
            sipp = await ss.start_sipp(
                tmp_path,
                "uac_stream",
                remote=f"127.0.0.1:{kam.port}",
                pause_ms=3000,
                keys={"rtpsink": str(sink_port)},
            )
            result = await sipp.result()
            for _ in range(40):
                if results:
                    break
                await asyncio.sleep(0.05)
    finally:
        pools.shutdown()
    assert result.rc == 0, result.output[-1500:]
    (call_result,) = results
    assert call_result.ended_by == "debtor"
    assert call_result.outcome["result"] == "hangup"
    assert call_result.duration_ms <= 3500
    agent_lines = [t for t in call_result.transcript if t["speaker"] == "agent"]
    assert agent_lines, "the agent greeted"
    # The greeting (a tone per clause from the fake synthesizer) reached the caller's socket.
    loud = [p for p in sink.packets if np.sqrt(np.mean(p.pcm16.astype(float) ** 2)) > 1000]
    assert len(loud) >= 25, f"only {len(loud)} loud packets reached the caller"
