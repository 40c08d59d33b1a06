"""The AudioSocket server against a peer that behaves like a real Asterisk (audiosocket_peer.py).

Every server binds 127.0.0.1 on an ephemeral port; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ruamel.yaml import YAML

from tests.call.speech import espeak
from tests.conftest import DIALPLANS, FIXTURES, ROOT
from tests.telephony.audiosocket_peer import AsteriskPeer, Call, Calls, Received
from voiceagent.asr.fake import FakeRecognizer
from voiceagent.audio.format import BYTES_PER_FRAME, SILENCE_FRAME
from voiceagent.call.clock import TransportClock
from voiceagent.call.session import CallResult, CallSession, Pools
from voiceagent.dialog import actions as act
from voiceagent.dialog.account import Account
from voiceagent.dialog.conversation import Conversation
from voiceagent.dialog.loader import load_dialplan_cached
from voiceagent.telephony.audiosocket import (
    DEFAULT_PORT,
    AudioSocketConfig,
    AudioSocketServer,
    AudioSocketTransport,
)
from voiceagent.telephony.audiosocket_protocol import (
    HANGUP_FRAME,
    Frame,
    Kind,
    ProtocolError,
    encode,
    parse,
    read_frame,
)
from voiceagent.telephony.base import Inbound
from voiceagent.tts.cache import PromptCache
from voiceagent.tts.fake import FakeSynthesizer, tone
from voiceagent.vad import Endpointer, WebRtcVad

MakeServer = Callable[..., Awaitable[AudioSocketServer]]


def ramp(n_bytes: int, start: int = 1) -> bytes:
    """PCM16 with no zero sample, so every byte of it can be traced through the server."""
    values = (np.arange(n_bytes // 2) + start) % 30000 + 1
    return values.astype("<i2").tobytes()


def sine(hz: float, duration_ms: int, rate_hz: int = 8000, amplitude: float = 8000) -> bytes:
    t = np.arange(rate_hz * duration_ms // 1000) / rate_hz
    return np.rint(amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def grid_offsets_ms(times: np.ndarray) -> np.ndarray:
    """Where each frame arrived against an ideal 20 ms grid, aligned on the median offset."""
    offsets_ms = (times - times[0]) * 1000 - 20 * np.arange(len(times))
    return offsets_ms - np.median(offsets_ms)


def on_grid(times: np.ndarray) -> float:
    """The fraction of frames that arrived within 10 ms of their place on the 20 ms grid."""
    return float(np.mean(np.abs(grid_offsets_ms(times)) < 10))


def numbered(i: int) -> bytes:
    """An outbound frame that says which tick wrote it."""
    return i.to_bytes(2, "little") + bytes(BYTES_PER_FRAME - 2)


async def until(predicate: Callable[[], bool], timeout_s: float) -> None:
    """Polls server counters, which have no event of their own (calls and peers do)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - nothing to wait on: plain counters
            await asyncio.sleep(0.005)


@pytest.fixture
async def make_server() -> AsyncIterator[MakeServer]:
    servers: list[AudioSocketServer] = []

    async def make(handler: Any, on_transfer: Any = None, **config: Any) -> AudioSocketServer:
        server = AudioSocketServer(
            handler, AudioSocketConfig(host="127.0.0.1", port=0, **config), on_transfer
        )
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


@pytest.fixture
async def peers() -> AsyncIterator[Callable[[AudioSocketServer], AsteriskPeer]]:
    made: list[AsteriskPeer] = []

    def make(server: AudioSocketServer) -> AsteriskPeer:
        peer = AsteriskPeer("127.0.0.1", server.port)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        await peer.close()


# --- framing ---------------------------------------------------------------------------------


def test_frames_reserialize_exactly() -> None:
    call_uuid = uuid.UUID("0b5e4f4e-8b1c-4c8e-9a5d-3f2b1a0c9d8e")
    captured = [
        b"\x01\x00\x10" + call_uuid.bytes,
        b"\x10\x01\x40" + ramp(320),
        b"\x10\x00\x18" + ramp(24),
        b"\x03\x00\x01" + b"#",
        b"\x00\x00\x00",
    ]
    for raw in captured:
        assert bytes(parse(raw)) == raw
    assert encode(Kind.HANGUP) == HANGUP_FRAME == b"\x00\x00\x00"
    assert parse(captured[0]) == Frame(Kind.UUID, call_uuid.bytes)
    with pytest.raises(ProtocolError, match="unknown frame kind 0x42"):
        parse(b"\x42\x00\x00")
    with pytest.raises(ProtocolError, match="header says 320 bytes, got 10"):
        parse(b"\x10\x01\x40" + bytes(10))
    with pytest.raises(ValueError, match="65535"):
        encode(Kind.SLIN, bytes(70000))


async def test_read_frame_tells_eof_from_a_truncated_frame() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(encode(Kind.DTMF, b"5") + b"\x10\x01\x40" + bytes(100))
    reader.feed_eof()
    assert await read_frame(reader) == Frame(Kind.DTMF, b"5")
    with pytest.raises(ProtocolError, match="announced 320 bytes, got 100 then EOF"):
        await read_frame(reader)
    clean = asyncio.StreamReader()
    clean.feed_eof()
    assert await read_frame(clean) is None


# --- inbound: reassembly, silence, DTMF, hangup ------------------------------------------------


async def test_short_frames_are_reassembled_into_exact_20ms_frames(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    calls = Calls()
    server = await make_server(calls)
    peer = peers(server)
    await peer.connect()
    call = await calls.get(peer)
    sent = ramp(20 * BYTES_PER_FRAME + 24)  # 400 ms and a 24-byte tail, as a prompt ends
    await peer.play(sent, chunk_sizes=(320, 24, 296, 160, 160, 100, 220))
    await call.wait_until(lambda: len(call.audio()) >= len(sent), 2)
    await peer.hang_up()
    await asyncio.wait_for(call.done.wait(), 2)
    assert all(len(inbound.pcm16_8k) == BYTES_PER_FRAME for _, inbound in call.ticks)
    heard = call.audio()
    # The tail is played once Asterisk goes quiet, padded with silence to a whole frame.
    assert heard == sent + bytes(BYTES_PER_FRAME - 24)
    assert call.transport is not None and call.transport.frames_dropped == 0
    assert call.call_uuid == str(peer.call_uuid)


async def test_silence_from_asterisk_still_gives_one_frame_every_20ms(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    calls = Calls()
    server = await make_server(calls)
    peer = peers(server)
    await peer.connect()
    call = await calls.get(peer)
    await peer.play(ramp(10 * BYTES_PER_FRAME))
    await asyncio.sleep(0.6)  # the channel is silent: a real Asterisk sends nothing at all
    await peer.play(ramp(10 * BYTES_PER_FRAME, start=7))
    await call.wait_until(lambda: len(call.audio()) >= 20 * BYTES_PER_FRAME, 2)
    await peer.hang_up()
    await asyncio.wait_for(call.done.wait(), 2)

    times = [t for t, _ in call.ticks]
    gaps_ms = np.diff(times) * 1000
    elapsed_ms = (times[-1] - times[0]) * 1000
    assert len(times) - 1 == pytest.approx(elapsed_ms / 20, abs=2)
    assert max(gaps_ms) < 45, f"a tick waited for Asterisk: {max(gaps_ms):.1f} ms"
    assert statistics.mean(gaps_ms) == pytest.approx(20, abs=1.5)
    audio = [i.pcm16_8k != SILENCE_FRAME for _, i in call.ticks]
    first, last = audio.index(True), len(audio) - 1 - audio[::-1].index(True)
    silent_run = max(len(run) for run in "".join("x" if a else " " for a in audio).split("x"))
    assert sum(audio) == 20 and silent_run >= 25  # ~600 ms of silence ticks between the bursts
    assert first < last
    assert call.transport is not None and call.transport.silent_ticks >= 25


async def test_dtmf_reaches_inbound(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    calls = Calls()
    server = await make_server(calls)
    peer = peers(server)
    await peer.connect()
    call = await calls.get(peer)
    for key in "48#":
        peer.dtmf(key)
    await peer.play(ramp(3 * BYTES_PER_FRAME))
    peer.dtmf("1")
    await call.wait_until(lambda: len(call.dtmf()) == 4, 2)
    await peer.hang_up()
    await asyncio.wait_for(call.done.wait(), 2)
    assert call.dtmf() == "48#1"
    with_keys = [i for _, i in call.ticks if i.dtmf]
    assert all(len(i.pcm16_8k) == BYTES_PER_FRAME for i in with_keys)


async def test_eof_from_asterisk_is_a_hangup(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    calls = Calls()
    server = await make_server(calls)
    peer = peers(server)
    await peer.connect()
    call = await calls.get(peer)
    await call.wait_until(lambda: len(call.ticks) >= 5, 2)
    closed_at = time.monotonic()
    await peer.hang_up()  # closes TCP, no 0x00 frame
    await asyncio.wait_for(call.done.wait(), 2)
    t_last, last = call.ticks[-1]
    assert last == Inbound(SILENCE_FRAME, hangup=True)
    assert t_last - closed_at < 0.1
    assert sum(i.hangup for _, i in call.ticks) == 1
    assert call.transport is not None and call.transport.hangup_reason == "asterisk"
    await until(lambda: server.active == 0, 2)


async def test_agent_hangup_sends_0x00_after_its_audio(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    calls = Calls(lambda: Call(out=numbered, end_after_ticks=10))
    server = await make_server(calls)
    peer = peers(server)
    await peer.connect()
    assert await peer.wait_ended(3) == "server_hangup"
    kinds = [r.kind for r in peer.received]
    assert kinds == [Kind.SLIN] * 10 + [Kind.HANGUP]
    assert [int.from_bytes(r.payload[:2], "little") for r in peer.audio()] == list(range(10))
    assert peer.error == ""


# --- outbound: pacing, keepalive ---------------------------------------------------------------


async def test_output_is_paced_at_20ms(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    n_frames = 100
    calls = Calls(lambda: Call(out=numbered, end_after_ticks=n_frames))
    server = await make_server(calls)
    peer = peers(server)
    await peer.connect()
    assert await peer.wait_ended(5) == "server_hangup"
    audio = peer.audio()
    assert [int.from_bytes(r.payload[:2], "little") for r in audio] == list(range(n_frames))
    assert all(len(r.payload) == BYTES_PER_FRAME for r in audio)
    times = np.array([r.t for r in audio])
    gaps_ms = np.diff(times) * 1000
    jitter_ms = np.abs(gaps_ms - 20)
    grid_ms = grid_offsets_ms(times)
    figures = (
        f"median gap {np.median(gaps_ms):.2f} ms, jitter p50 {np.percentile(jitter_ms, 50):.2f}"
        f" p95 {np.percentile(jitter_ms, 95):.2f} max {jitter_ms.max():.2f} ms, off-grid max"
        f" {np.abs(grid_ms).max():.2f} ms, drift {grid_ms[-1] - grid_ms[0]:.2f} ms"
    )
    # Tolerances hold on a loaded 2-core machine (the peer shares the server's event loop);
    # a transport that bursts, waits for Asterisk or drifts misses them by far.
    assert np.median(gaps_ms) == pytest.approx(20, abs=1), figures
    assert on_grid(times) >= 0.9, figures
    assert np.mean(gaps_ms < 2) <= 0.1, figures  # catch-up after a stall, never a burst


async def test_keepalive_holds_asterisk_while_the_call_is_set_up(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    hold = asyncio.Event()
    calls = Calls(lambda: Call(hold=hold))
    server = await make_server(calls)
    peer = peers(server)
    await peer.connect()
    # The handler writes nothing for over 2 s; keepalive silence stops Asterisk's idle timeout.
    await peer.wait_until(lambda: len(peer.audio()) >= 3, 5)
    assert not peer.ended.is_set()
    assert all(r.payload == SILENCE_FRAME for r in peer.audio())
    hold.set()
    await peer.hang_up()
    assert peer.end_reason == "peer_hangup"


async def test_the_peer_drops_a_server_that_sends_nothing_for_2s(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    """The fake Asterisk's idle timeout is real (so the keepalive test above can fail)."""
    hold = asyncio.Event()
    calls = Calls(lambda: Call(hold=hold))
    server = await make_server(calls, keepalive_after_s=60)
    peer = peers(server)
    await peer.connect()
    started = time.monotonic()
    assert await peer.wait_ended(4) == "idle_timeout"
    assert time.monotonic() - started == pytest.approx(2.0, abs=0.3)
    hold.set()
    call = await calls.get(peer)
    await asyncio.wait_for(call.done.wait(), 2)
    assert call.ticks[0][1].hangup  # the server saw Asterisk go away


# --- broken peers, floods, limits ------------------------------------------------------------

BAD_INPUT = {
    "audio_before_uuid": (False, encode(Kind.SLIN, ramp(320)), "first frame must be the UUID"),
    "text_uuid": (False, encode(Kind.UUID, b"0b5e4f4e-8b1c-4c8e"), "16 raw bytes, got 18"),
    "unknown_kind": (True, b"\x42\x00\x01x", "unknown frame kind 0x42"),
    "oversized_payload": (True, b"\x10\xff\xff" + bytes(64), "65535 bytes is over the limit"),
    "truncated_frame": (True, b"\x10\x01\x40" + bytes(10), "payload stalled"),
    "bad_dtmf_key": (True, encode(Kind.DTMF, b"x"), "one key of 0-9*#A-D"),
    "uuid_again": (True, encode(Kind.UUID, uuid.uuid4().bytes), "unexpected frame kind 0x01"),
    "asterisk_error": (True, encode(Kind.ERROR, b"\x04"), "error 0x04 (memory)"),
    "audio_flood": (True, encode(Kind.SLIN, bytes(8000)) * 40, "s of audio within one second"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
async def test_bad_input_closes_only_that_connection(
    case: str,
    make_server: MakeServer,
    peers: Callable[[AudioSocketServer], AsteriskPeer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    send_uuid, garbage, message = BAD_INPUT[case]
    calls = Calls(lambda: Call(out=numbered))
    server = await make_server(calls, payload_timeout_s=0.3)
    good = peers(server)
    await good.connect()
    await good.wait_until(lambda: len(good.audio()) >= 5, 2)

    bad = peers(server)
    with caplog.at_level(logging.ERROR, logger="voiceagent.telephony.audiosocket"):
        await bad.connect(send_uuid=send_uuid)
        bad.send_raw(garbage)
        assert await bad.wait_ended(3) == "server_hangup"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(message in e and "closing this connection" in e for e in errors), errors
    assert bad.received[-1].kind == Kind.HANGUP
    if send_uuid:
        broken = await calls.get(bad)
        await asyncio.wait_for(broken.done.wait(), 2)
        assert broken.ticks[-1][1].hangup
        assert broken.transport is not None and message in (broken.transport.error or "")
    await until(lambda: server.protocol_errors == 1, 2)

    # The other call never noticed: still paced audio, still open.
    n_before = len(good.audio())
    await good.wait_until(lambda: len(good.audio()) >= n_before + 10, 2)
    assert not good.ended.is_set() and good.error == ""
    await good.hang_up()


async def test_a_burst_is_bounded_and_counted(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    calls = Calls()
    server = await make_server(calls, inbound_max_frames=10)
    peer = peers(server)
    await peer.connect()
    call = await calls.get(peer)
    await call.wait_until(lambda: len(call.ticks) >= 2, 2)
    burst = ramp(50 * BYTES_PER_FRAME)  # a second of audio at once: not a flood, but a backlog
    peer.send_raw(b"".join(encode(Kind.SLIN, burst[i : i + 320]) for i in range(0, 16000, 320)))
    transport = call.transport
    assert transport is not None
    await call.wait_until(lambda: transport.frames_in == 50, 2)
    await call.wait_until(lambda: len(call.audio()) == (50 - transport.frames_dropped) * 320, 2)
    assert 35 <= transport.frames_dropped <= 40  # at most 10 queued (+ what the ticks took)
    assert call.audio() == burst[-len(call.audio()) :]  # the newest audio survived
    assert not peer.ended.is_set()
    await peer.hang_up()


async def test_connections_beyond_the_cap_get_a_hangup(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    calls = Calls()
    server = await make_server(calls, max_connections=1)
    first = peers(server)
    await first.connect()
    await calls.get(first)
    second = peers(server)
    await second.connect()
    assert await second.wait_ended(2) == "server_hangup"
    assert [r.kind for r in second.received] == [Kind.HANGUP]
    assert server.rejected == 1 and str(second.call_uuid) not in calls.by_uuid
    assert not first.ended.is_set()

    await first.hang_up()
    await until(lambda: server.active == 0, 2)
    third = peers(server)
    await third.connect()
    call = await calls.get(third)
    await call.wait_until(lambda: len(call.ticks) >= 3, 2)
    assert not third.ended.is_set()
    await third.hang_up()


async def test_16khz_audio_is_resampled_to_8khz(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    calls = Calls()
    server = await make_server(calls)
    peer = peers(server)
    await peer.connect()
    call = await calls.get(peer)
    await peer.play(sine(440, 600, rate_hz=16000), kind=Kind.SLIN_16K, chunk_sizes=(640,))
    await call.wait_until(lambda: len(call.audio()) >= 25 * BYTES_PER_FRAME, 2)
    await peer.hang_up()
    await asyncio.wait_for(call.done.wait(), 2)
    heard = np.frombuffer(call.audio(), "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard))))
    peak_hz = np.argmax(spectrum) * 8000 / len(heard)
    assert peak_hz == pytest.approx(440, abs=10)
    assert np.sqrt(np.mean(heard[800:-800] ** 2)) == pytest.approx(8000 / np.sqrt(2), rel=0.05)


# --- transfer ----------------------------------------------------------------------------------


async def test_transfer_publishes_the_target_before_hanging_up(
    make_server: MakeServer, peers: Callable[[AudioSocketServer], AsteriskPeer]
) -> None:
    published: list[tuple[str, str, float]] = []

    async def on_transfer(call_uuid: str, target: str) -> None:
        await asyncio.sleep(0.05)  # an AMI round trip
        published.append((call_uuid, target, time.monotonic()))

    calls = Calls(lambda: Call(end_after_ticks=5, transfer_to="agents"))
    server = await make_server(calls, on_transfer=on_transfer)
    peer = peers(server)
    await peer.connect()
    assert await peer.wait_ended(3) == "server_hangup"
    assert [(u, t) for u, t, _ in published] == [(str(peer.call_uuid), "agents")]
    assert published[0][2] < peer.received[-1].t  # the dialplan can read it once 0x00 arrives
    call = await calls.get(peer)
    assert call.transport is not None and call.transport.hangup_reason == "transfer"
    assert peer.error == ""


async def test_transfer_without_a_hook_is_refused_and_says_why(
    make_server: MakeServer,
    peers: Callable[[AudioSocketServer], AsteriskPeer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = Calls(lambda: Call(end_after_ticks=2, transfer_to="agents"))
    server = await make_server(calls)
    peer = peers(server)
    with caplog.at_level(logging.ERROR, logger="voiceagent.telephony.audiosocket"):
        await peer.connect()
        assert await peer.wait_ended(3) == "server_hangup"
    assert any("no on_transfer hook" in r.getMessage() for r in caplog.records)


# --- a real CallSession behind the server ------------------------------------------------------

ACCOUNT = Account.model_validate(json.loads((FIXTURES / "accounts" / "co-early.json").read_text()))
TALK_RUN_END = 25
"""Silent frames (500 ms) after agent audio that mean the agent has finished its turn."""


class QuickSynth(FakeSynthesizer):
    """The fake voice at 5 ms a character, so a whole greeting plays in about a second."""

    def synthesize(self, text: str) -> Iterator[bytes]:
        for clause in self.clauses(text):
            self.texts.append(clause)
            yield tone(clause, max(100, 5 * len(clause)), self.amplitude)


class ListSink:
    def __init__(self) -> None:
        self.committed: list[act.Action] = []

    def commit(self, call_id: str, action: act.Action) -> None:
        self.committed.append(action)


def talk_runs(peer: AsteriskPeer) -> list[list[Received]]:
    """The agent's finished turns: every frame from its first to its last non-silent one, for
    turns followed by at least TALK_RUN_END silent frames."""
    runs: list[list[Received]] = []
    current: list[Received] = []
    silent: list[Received] = []
    for r in peer.audio():
        if any(r.payload):
            if len(silent) >= TALK_RUN_END and current:
                runs.append(current)
                current = []
            elif current:
                current.extend(silent)
            current.append(r)
            silent = []
        else:
            silent.append(r)
    if current and len(silent) >= TALK_RUN_END:
        runs.append(current)
    return runs


def talking(peer: AsteriskPeer, n_turns_done: int) -> bool:
    """The agent has started a turn after ``n_turns_done`` finished ones."""
    audio = peer.audio()
    done = talk_runs(peer)[:n_turns_done]
    return sum(any(r.payload) for r in audio) > sum(any(r.payload) for t in done for r in t)


@dataclass
class LiveCalls:
    """The production wiring of one call, minus the engines: a CallSession per connection."""

    tmp_path: Path
    recognizer: FakeRecognizer
    pools: Pools = field(default_factory=Pools.create)
    sink: ListSink = field(default_factory=ListSink)
    results: dict[str, CallResult] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, transport: AudioSocketTransport, call_uuid: str) -> None:
        plan = load_dialplan_cached(str(DIALPLANS / "es-419" / "early.yaml"))
        session = CallSession(
            call_id=call_uuid,
            conversation=Conversation(plan, ACCOUNT, date(2026, 11, 18)),
            transport=transport,
            recognizer=self.recognizer,
            voice=PromptCache(self.tmp_path / "cache", QuickSynth("es")),
            endpointer=Endpointer(WebRtcVad(2)),
            pools=self.pools,
            sink=self.sink,
            clock=TransportClock(),  # the transport's read() is the 20 ms clock
        )
        try:
            self.results[call_uuid] = await session.run()
        finally:
            self.done.set()


@pytest.fixture
def speech() -> bytes:
    return espeak("sí, con ella habla")


async def test_call_session_behind_asterisk_debtor_hangs_up(
    make_server: MakeServer,
    peers: Callable[[AudioSocketServer], AsteriskPeer],
    tmp_path: Path,
    speech: bytes,
) -> None:
    live = LiveCalls(tmp_path, FakeRecognizer(["sí, con ella habla"]))
    try:
        server = await make_server(live)
        peer = peers(server)
        await peer.connect()
        # 1. The greeting arrives as audio paced at 20 ms: one frame per 20 ms of wall time.
        # (A loop stalled by the session shows as one late frame and then a catch-up frame;
        # test_output_is_paced_at_20ms measures the transport's own jitter.)
        await peer.wait_until(lambda: len(talk_runs(peer)) >= 1, 10)
        greeting = talk_runs(peer)[0]
        times = np.array([r.t for r in greeting])
        gaps_ms = np.diff(times) * 1000
        assert len(greeting) >= 40
        assert np.median(gaps_ms) == pytest.approx(20, abs=1)
        assert on_grid(times) >= 0.9
        assert gaps_ms.max() < 100
        # 2. The debtor answers in speech, cut into frames as Asterisk does; silence after.
        await peer.play(speech, chunk_sizes=(320, 320, 320, 24, 296))
        await peer.wait_until(lambda: len(talk_runs(peer)) >= 2, 10)  # asks for the document
        # 3. Keys on key-up drive the identity check.
        for key in "4821":
            peer.dtmf(key)
        await peer.wait_until(lambda: talking(peer, 2), 10)  # tells the debt
        # 4. The debtor hangs up while the agent talks: TCP closes, no 0x00.
        await peer.hang_up()
        await asyncio.wait_for(live.done.wait(), 5)
    finally:
        live.pools.shutdown()
    result = live.results[str(peer.call_uuid)]
    assert result.ended_by == "debtor"
    assert result.outcome["result"] == "hangup"
    said = [(e["speaker"], e["text"]) for e in result.transcript]
    assert ("debtor", "sí, con ella habla") in said
    agent = " ".join(text for who, text in said if who == "agent")
    assert "¿Hablo con" in agent and "últimos cuatro dígitos" in agent and "saldo" in agent
    assert peer.error == "" and all(r.kind == Kind.SLIN for r in peer.received)


@pytest.mark.parametrize(
    ("heard", "outcome", "ended_by", "transferred"),
    [
        ("no me vuelvan a llamar", "stop_contact", "agent", []),
        ("quiero hablar con un asesor", "transfer", "transfer:agents", ["agents"]),
    ],
)
async def test_call_session_behind_asterisk_agent_ends_the_call(
    heard: str,
    outcome: str,
    ended_by: str,
    transferred: list[str],
    make_server: MakeServer,
    peers: Callable[[AudioSocketServer], AsteriskPeer],
    tmp_path: Path,
    speech: bytes,
) -> None:
    published: list[tuple[str, str]] = []

    async def on_transfer(call_uuid: str, target: str) -> None:
        published.append((call_uuid, target))

    live = LiveCalls(tmp_path, FakeRecognizer([heard]))
    try:
        server = await make_server(live, on_transfer=on_transfer)
        peer = peers(server)
        await peer.connect()
        await peer.wait_until(lambda: len(talk_runs(peer)) >= 1, 10)
        await peer.play(speech)
        assert await peer.wait_ended(15) == "server_hangup"
        await asyncio.wait_for(live.done.wait(), 5)
    finally:
        live.pools.shutdown()
    result = live.results[str(peer.call_uuid)]
    assert (result.outcome["result"], result.ended_by) == (outcome, ended_by)
    assert published == [(str(peer.call_uuid), t) for t in transferred]
    kinds = [r.kind for r in peer.received]
    assert kinds[-1] == Kind.HANGUP and set(kinds[:-1]) == {Kind.SLIN}
    # The goodbye was played out in full before the hangup frame.
    assert any(r.payload for r in peer.audio()[-TALK_RUN_END * 3 :])


# --- the Asterisk and compose configs -----------------------------------------------------------

ASTERISK = ROOT / "asterisk"
_SECTION = re.compile(r"^\[([\w-]+)\](\([!\w,-]*\))?$")
_ENTRY = re.compile(r"^(exten|same|[\w-]+)\s*=>?\s*(.+)$")


def read_conf(name: str) -> dict[str, list[tuple[str, str]]]:
    """An Asterisk .conf as {section: [(key, value)]}; fails on any line that is neither."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for n, raw in enumerate((ASTERISK / name).read_text().splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if m := _SECTION.match(line):
            current = sections.setdefault(m.group(1), [])
        elif (m := _ENTRY.match(line)) and current is not None:
            current.append((m.group(1), m.group(2).strip()))
        else:
            raise AssertionError(f"asterisk/{name}:{n}: not INI-ish: {raw!r}")
    return sections


def test_asterisk_configs_parse_and_point_at_the_agent() -> None:
    for name in ("pjsip.conf", "extensions.conf", "manager.conf", "modules.conf", "rtp.conf"):
        assert read_conf(name), name
    ext = read_conf("extensions.conf")
    audiosockets = [v for entries in ext.values() for _, v in entries if "AudioSocket(" in v]
    assert len(audiosockets) == 2  # inbound callbacks and outbound (dialer) calls
    for line in audiosockets:
        m = re.search(r"AudioSocket\(\$\{(\w+)\},([\w.-]+):(\d+)\)", line)
        assert m is not None, line
        assert (m.group(2), int(m.group(3))) == ("voiceagent", DEFAULT_PORT), line
    # Every transfer target a dialplan can name has its extension in [voiceagent-transfer].
    yaml = YAML(typ="safe", pure=True)
    targets: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("transfer"), str):
                targets.add(node["transfer"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for path in DIALPLANS.glob("*/*.yaml"):
        collect(yaml.load(path.read_text()))
    extens = {v.split(",", 1)[0] for k, v in ext["voiceagent-transfer"] if k == "exten"}
    assert targets and targets <= extens, targets - extens
    assert "i" in extens  # an unknown target hangs up instead of going anywhere


def test_ami_is_not_open_to_the_world() -> None:
    manager = read_conf("manager.conf")
    user = dict(manager["voiceagent"])
    assert user["deny"] == "0.0.0.0/0.0.0.0"
    permits = [v for k, v in manager["voiceagent"] if k == "permit"]
    assert permits and all(p.startswith(("127.", "172.28.")) for p in permits)
    assert "change-me" in user["secret"]  # a placeholder, never a real secret in the repo


def test_compose_exposes_only_sip_and_rtp() -> None:
    compose = YAML(typ="safe", pure=True).load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"asterisk", "voiceagent", "postgres"}
    env = services["voiceagent"]["environment"]
    assert int(env["VOICEAGENT_AUDIOSOCKET_PORT"]) == DEFAULT_PORT
    assert "@postgres:5432/" in env["VOICEAGENT_DATABASE_URL"]
    assert services["voiceagent"]["build"] == "."
    assert "ports" not in services["postgres"]
    assert all(p.startswith("127.0.0.1:") for p in services["voiceagent"]["ports"])
    public = [p.split(":")[-1] for p in services["asterisk"]["ports"]]
    assert public == ["5060/udp", "10000-10099/udp"]  # never 5038 (AMI) or 9092 (AudioSocket)
    rtp = dict(read_conf("rtp.conf")["general"])
    assert f"{rtp['rtpstart']}-{rtp['rtpend']}/udp" == public[1]
