"""Hostile SIP and RTP against the agent, run inside a loopback-only network namespace.

The ``hostile_*`` functions are the real tests. They never run in the caller's network: the
``test_inside_loopback_namespace[...]`` tests start one pytest inside ``unshare -rn`` (see
``netns.py``) that collects only ``hostile_*`` (``-o python_functions=hostile_*``), then
report each one's outcome here. Inside, kamailio, sipp, the agent endpoint and the attacker
all bind 127.0.0.1; a packet sniffer on ``lo`` and a wrapper around ``socket.sendto`` and
``getaddrinfo`` in the agent's process record every destination and every name lookup.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import resource
import socket
import struct
import subprocess
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.model_gate import need
from tests.telephony import netns
from tests.telephony import sipstack as ss
from tests.telephony.test_sip import Recorder, agent, caller_audio, wait_no_call_threads
from voiceagent.telephony.pyvoip import SipEndpoint, dropped
from voiceagent.telephony.sipcall import RtpSourceLock, SipCall
from voiceagent.telephony.sipguard import (
    RateLimitedLog,
    Rejection,
    check_offer,
    check_request,
    error_response,
    unsafe_host,
)

pytestmark = [pytest.mark.sip]

FIGURES_ENV = "VOICEAGENT_HOSTILE_FIGURES"
LEGIT_CALLER = "5550100"
"""The user part sipp's uac_stream scenario calls from; every other caller is an attacker."""
MEDIA = {"media_networks": ("127.0.0.0/8",)}
VALID = {"wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq"}
VALID |= {"semiuri", "transports", "mpart01", "unreason", "noreason"}
RESPONSES = {"unreason", "noreason", "scalarlg", "bigcode", "bcast"}
"""Responses to no request of ours: a UA answers nothing."""
EXPECTED = {
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "quotbal": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "mismatch01": 400,
    "mismatch02": 400,
    "multi01": 400,
    "mcl01": 400,
    "insuf": 400,
    "ltgtruri": 416,
    "unkscm": 416,
    "novelsc": 416,
    "badvers": 505,
    "bext01": 420,
    "invut": 488,
}
"""RFC 4475 invalid requests and the status RFC 3261 calls for (section 3.1.2, 3.3)."""


def core_threads() -> list[str]:
    """Thread names, less asyncio's default executor (``asyncio.to_thread`` keeps its workers)."""
    return [t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")]


class Watch:
    """What the agent's process does on the network: destinations, name lookups, crashes."""

    def __init__(self) -> None:
        self.sniffer = ss.LoopbackSniffer()
        self.sent_to: Counter[str] = Counter()
        self.lookups: list[str] = []
        self.thread_errors: list[str] = []
        self.baseline_threads = len(core_threads())

    def outside(self) -> dict[str, int]:
        seen = Counter(self.sniffer.destinations) + self.sent_to
        return {host: n for host, n in seen.items() if not host.startswith("127.")}


@pytest.fixture(scope="module")
def watch() -> Iterator[Watch]:
    w = Watch()
    real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo
    real_hook = threading.excepthook

    def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
        address = args[-1]
        if isinstance(address, tuple):
            w.sent_to[str(address[0])] += 1
        return real_sendto(sock, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str):
            try:
                socket.inet_aton(host)
            except OSError:
                if host != "localhost":
                    w.lookups.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def hook(args: threading.ExceptHookArgs) -> None:
        text = "".join(
            traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
        )
        w.thread_errors.append(f"{args.thread.name if args.thread else '?'}: {text}")

    socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    threading.excepthook = hook
    try:
        yield w
    finally:
        socket.socket.sendto = real_sendto  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo
        threading.excepthook = real_hook
        w.sniffer.close()


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, Any]]:
    out: dict[str, Any] = {}
    yield out
    path = os.environ.get(FIGURES_ENV)
    if path:
        Path(path).write_text(json.dumps(out, indent=1, sort_keys=True))


@pytest.fixture(scope="module")
def kam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ss.Kamailio]:
    need(ss.have_tools(), "kamailio and sipp (apt-get install kamailio sip-tester)")
    with ss.run_kamailio(tmp_path_factory.mktemp("kamailio")) as kamailio:
        yield kamailio


class Triage:
    """The agent's call handler: the legitimate sipp caller is recorded, attackers hung up on."""

    def __init__(self) -> None:
        self.legit = Recorder()
        self.attack_calls = 0

    async def __call__(self, call: SipCall) -> None:
        if call.caller_id == LEGIT_CALLER:
            await self.legit(call)
            return
        self.attack_calls += 1
        await asyncio.sleep(0.3)
        await call.hangup()


async def legit_call_works(kam: ss.Kamailio, triage: Triage, tmp_path: Path) -> dict[str, float]:
    """A sipp call through kamailio is answered fast and audio flows both ways."""
    source = caller_audio(tmp_path)
    prompt = ss.speechlike_signal(1.5, seed=11)
    rec = triage.legit = Recorder(say=prompt)
    started = time.monotonic()
    async with ss.rtp_sink() as (sink, sink_port):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_stream",
            remote=f"127.0.0.1:{kam.port}",
            pause_ms=3000,
            keys={"rtpsink": str(sink_port)},
        )
        result = await sipp.result()
    assert result.rc == 0, result.output[-1500:]
    await asyncio.wait_for(rec.hangup_seen.wait(), 2)
    answer_ms = result.ms_between(r"^INVITE ", r"^SIP/2.0 200")
    assert answer_ms < 300, f"INVITE -> 200 OK took {answer_ms:.0f} ms"
    snr_in, snr_out = ss.snr_db(source, rec.audio()), ss.snr_db(prompt, sink.audio())
    assert snr_in >= 30, f"caller -> agent SNR {snr_in:.1f} dB"
    assert snr_out >= 30, f"agent -> caller SNR {snr_out:.1f} dB"
    return {"answer_ms": round(answer_ms, 1), "call_s": round(time.monotonic() - started, 2)}


async def after_wave(
    kam: ss.Kamailio, triage: Triage, tmp_path: Path, watch: Watch
) -> dict[str, Any]:
    """The checks every attack wave ends with."""
    legit = await legit_call_works(kam, triage, tmp_path)
    assert await wait_no_call_threads(3.0) == []
    # The endpoint's own threads only: SIP receive, re-REGISTER, its pool of 4.
    assert len(core_threads()) <= watch.baseline_threads + 6, core_threads()
    assert watch.thread_errors == [], watch.thread_errors[:3]
    assert watch.outside() == {}, "the agent sent to a non-loopback address"
    assert watch.lookups == [], f"the agent looked up names: {watch.lookups[:5]}"
    return legit


def classify(replies: list[bytes]) -> str:
    codes = [c for c in map(ss.sip_status, replies) if c is not None and c >= 200]
    return str(codes[0]) if codes else "none"


# --- the tests (collected inside the namespace only) ---


def hostile_namespace_has_only_loopback() -> None:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OSError) as sent:
        s.sendto(b"x", ("8.8.8.8", 53))
    assert sent.value.errno == 101  # ENETUNREACH
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("example.com", 5060)


async def hostile_rfc4475_torture(
    kam: ss.Kamailio, watch: Watch, figures: dict[str, Any], tmp_path: Path
) -> None:
    triage = Triage()
    probe = ss.SipProbe()
    direct: dict[str, str] = {}
    proxied: dict[str, str] = {}
    try:
        async with agent(kam, triage, **MEDIA) as endpoint:
            for path in sorted(ss.TORTURE.glob("*.dat")):
                raw = path.read_bytes()
                replies = await asyncio.to_thread(
                    probe.exchange, raw, endpoint.config.sip_port, 0.3
                )
                direct[path.stem] = classify(replies)
                replies = await asyncio.to_thread(probe.exchange, raw, kam.port, 0.1)
                proxied[path.stem] = classify(replies)
            assert endpoint.active_calls == 0, "a torture INVITE set up a call"
            figures["torture_legit_call"] = await after_wave(kam, triage, tmp_path, watch)
    finally:
        probe.close()
    figures["torture_direct"] = direct
    figures["torture_via_kamailio"] = proxied
    figures["torture_summary"] = dict(Counter(direct.values()))
    figures["sniffer_non_ipv4_frames"] = watch.sniffer.non_ipv4
    assert len(direct) == 49
    wrong = {k: (direct[k], v) for k, v in EXPECTED.items() if direct[k] != str(v)}
    assert wrong == {}, f"(got, wanted): {wrong}"
    assert {k: direct[k] for k in RESPONSES} == dict.fromkeys(RESPONSES, "none")
    answered_2xx = {k for k, v in direct.items() if v.startswith("2") and k not in VALID}
    assert answered_2xx <= {"badaspec", "badbranch", "baddn", "zeromf"}  # OPTIONS: 200 is fine
    assert triage.attack_calls == 0


async def hostile_mutated_invites(
    kam: ss.Kamailio,
    watch: Watch,
    figures: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(4475)
    kinds = sorted(ss.MUTATIONS)
    outcome: dict[str, Counter[str]] = {k: Counter() for k in kinds}
    triage = Triage()
    probe = ss.SipProbe()
    try:
        async with agent(kam, triage, max_calls=4, **MEDIA) as endpoint:
            port = endpoint.config.sip_port
            for i in range(300):
                kind = kinds[i % len(kinds)]
                base = ss.invite(f"mut{i}", probe.port, port)
                mutant = ss.MUTATIONS[kind](rng, base)
                replies = await asyncio.to_thread(probe.exchange, mutant, port, 0.15)
                outcome[kind][classify(replies)] += 1
            figures["mutants_legit_call"] = await after_wave(kam, triage, tmp_path, watch)
    finally:
        probe.close()
    figures["mutants"] = {k: dict(v) for k, v in outcome.items()}
    agent_lines = [r for r in caplog.records if r.name.startswith("voiceagent.telephony")]
    figures["mutants_log_lines"] = len(agent_lines)
    assert len(agent_lines) <= 30, "bad input is logged once per reason per 10 s, not per packet"
    for kind in ("no_call_id", "no_cseq", "no_via", "bad_cseq", "cl_text", "cl_negative"):
        assert set(outcome[kind]) == {"400"}, (kind, outcome[kind])
    for kind in ("sdp_c_broadcast", "sdp_c_hostname", "sdp_port0", "sdp_no_m"):
        assert set(outcome[kind]) == {"488"}, (kind, outcome[kind])
    for kind in ("via_broadcast", "via_hostname", "via_maddr"):  # answered at the source
        assert "none" not in outcome[kind], (kind, outcome[kind])


async def hostile_invite_flood(
    kam: ss.Kamailio, watch: Watch, figures: dict[str, Any], tmp_path: Path
) -> None:
    triage = Triage()
    probe = ss.SipProbe()
    finals: dict[str, int] = {}
    peak_calls = 0
    try:
        async with agent(kam, triage, max_calls=4, **MEDIA) as endpoint:
            port = endpoint.config.sip_port
            started = time.monotonic()
            for i in range(2000):
                probe.send(ss.invite(f"flood{i}", probe.port, port), port)
                if i % 20 == 19:
                    _note_finals(probe.drain(0), finals)
                    peak_calls = max(peak_calls, endpoint.active_calls)
                    await asyncio.sleep(max(0.0, started + (i + 1) / 200 - time.monotonic()))
            sent_s = time.monotonic() - started
            deadline = time.monotonic() + 3
            while len(finals) < 2000 and time.monotonic() < deadline:
                _note_finals(await asyncio.to_thread(probe.drain, 0.1), finals)
            handled_s = time.monotonic() - started
            flood_over = time.monotonic()
            for _ in range(500):  # polled: the endpoint has no "idle" event to wait on
                if not endpoint.active_calls:
                    break
                await asyncio.sleep(0.01)
            drained_s = time.monotonic() - flood_over
            legit = await after_wave(kam, triage, tmp_path, watch)
    finally:
        probe.close()
    codes = Counter(finals.values())
    figures["flood"] = {
        "sent": 2000,
        "send_s": round(sent_s, 2),
        "finals": dict(codes),
        "no_final": 2000 - len(finals),
        "handled_per_s": round(len(finals) / handled_s, 1),
        "peak_live_calls": peak_calls,
        "answered_calls": triage.attack_calls,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "calls_drained_s": round(drained_s, 2),
        "legit_after": legit,
    }
    assert len(finals) >= 0.98 * 2000, figures["flood"]
    assert codes[486] + codes[503] >= 1500, figures["flood"]
    assert peak_calls <= 4


def _note_finals(replies: list[bytes], finals: dict[str, int]) -> None:
    for reply in replies:
        code = ss.sip_status(reply)
        if code is not None and code >= 200:
            call_id = reply.split(b"Call-ID: ", 1)[-1].split(b"\r\n", 1)[0].decode()
            finals.setdefault(call_id, code)


def garbage_rtp(rng: random.Random, n_packets: int) -> Iterator[bytes]:
    """Random bytes, wrong versions, huge packets, a foreign SSRC, payload-type changes."""
    ulaw = bytes(160)
    for i in range(n_packets):
        kind = i % 8
        if kind == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        elif kind == 1:
            yield bytes([rng.choice((0x00, 0x40, 0xC0)), 0]) + bytes(10) + ulaw  # version 0/1/3
        elif kind == 2:
            yield struct.pack(">BBHII", 0x80, 0, i, i * 160, 0xDEAD) + b"\x7f" * 60000
        elif kind == 3:
            yield struct.pack(">BBHII", 0x80, 0, 50000 + i, i * 160, rng.getrandbits(32)) + ulaw
        elif kind == 4:
            pt = rng.choice((8, 13, 18, 96, 127))
            yield struct.pack(">BBHII", 0x80, pt, i, i * 160, 0xBEEF) + ulaw
        elif kind == 5:
            yield struct.pack(">BBHII", 0x80, 101, i, i * 160, 0xBEEF) + bytes([rng.randrange(256)])
        elif kind == 6:
            yield struct.pack(">BBHII", 0xBF, 0, i, 0, 0xBEEF)  # 15 CSRCs, extension, no room
        else:
            yield struct.pack(">BBHII", 0xA0, 0, i, 0, 0xBEEF) + b"\x00\xff"  # padding > size


async def hostile_garbage_rtp_mid_call(
    kam: ss.Kamailio, watch: Watch, figures: dict[str, Any], tmp_path: Path
) -> None:
    triage = Triage()
    source = caller_audio(tmp_path)
    rec = triage.legit = Recorder(say=ss.speechlike_signal(3.0, seed=3))
    async with agent(kam, triage, **MEDIA) as endpoint, ss.rtp_sink() as (sink, sink_port):
        sipp = await ss.start_sipp(
            tmp_path,
            "uac_stream",
            remote=f"127.0.0.1:{kam.port}",
            pause_ms=3000,
            keys={"rtpsink": str(sink_port)},
        )
        for _ in range(150):  # the attack starts once the caller's audio flows
            if rec.calls and rec.calls[0].stats.frames_in > 5:
                break
            await asyncio.sleep(0.02)
        rtp_port = _agent_rtp_port(endpoint)
        sent = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            for packet in garbage_rtp(random.Random(7), 800):
                attacker.sendto(packet, ("127.0.0.1", rtp_port))
                sent += 1
                if sent % 40 == 0:
                    await asyncio.sleep(0.05)
        result = await sipp.result()
        assert result.rc == 0, result.output[-1500:]  # the call went on and ended with BYE
        await asyncio.wait_for(rec.hangup_seen.wait(), 2)
        (call,) = rec.calls
        assert call.ended_by == "remote"
        expected_frames = len(source) / 160
        assert 0.9 * expected_frames <= call.stats.frames_in <= 1.1 * expected_frames
        snr_in = ss.snr_db(source, rec.audio())
        assert snr_in >= 30, f"garbage reached the dialog as audio: SNR {snr_in:.1f} dB"
        out_packets = len(sink.packets)
        assert out_packets >= 100, "the agent kept sending RTP"
        figures["rtp_garbage"] = {
            "sent": sent,
            "dropped_so_far": dict(dropped.counts),
            "frames_in": call.stats.frames_in,
            "expected_frames": round(expected_frames),
            "snr_in_db": round(snr_in, 1),
            "agent_packets_out": out_packets,
        }
        figures["rtp_legit_call"] = await after_wave(kam, triage, tmp_path, watch)


def _agent_rtp_port(endpoint: SipEndpoint) -> int:
    for call in endpoint._phone._calls_snapshot():
        for client in call._rtp_clients_snapshot():
            return int(client.inPort)
    raise AssertionError("no call with RTP")


async def hostile_bye_and_cancel_for_unknown_dialogs(
    kam: ss.Kamailio, watch: Watch, figures: dict[str, Any], tmp_path: Path
) -> None:
    triage = Triage()
    probe = ss.SipProbe()
    try:
        async with agent(kam, triage, **MEDIA) as endpoint:
            port = endpoint.config.sip_port
            replies: dict[str, str] = {}
            for method in ("BYE", "CANCEL"):
                msg = ss.invite(f"ghost-{method}", probe.port, port)
                msg = msg.replace(b"INVITE", method.encode()).replace(b"CSeq: 1", b"CSeq: 2")
                if method == "BYE":
                    msg = msg.replace(
                        b"To: <sip:agent@127.0.0.1:%d>" % port,
                        b"To: <sip:agent@127.0.0.1:%d>;tag=zz" % port,
                    )
                got = await asyncio.to_thread(probe.exchange, msg, port, 0.3)
                replies[method] = classify(got)
            figures["unknown_dialog"] = replies
            assert replies == {"BYE": "481", "CANCEL": "481"}
            figures["unknown_dialog_legit_call"] = await after_wave(kam, triage, tmp_path, watch)
    finally:
        probe.close()


# --- outside, no network: the fixtures and the guard's decisions on their own ---


def test_torture_fixtures_are_the_49_rfc4475_messages_with_crlf() -> None:
    files = sorted(ss.TORTURE.glob("*.dat"))
    readme = (ss.TORTURE / "README.md").read_text()
    assert len(files) == 49
    for path in files:
        raw = path.read_bytes()
        assert b"\r\n\r\n" in raw, path.name
        head = raw.partition(b"\r\n\r\n")[0]
        assert b"\n" not in head.replace(b"\r\n", b""), f"{path.name}: bare LF in headers"
        assert f"`{path.stem}`" in readme, f"{path.name} has no source line in the README"


def test_guard_rejects_rfc4475_invalid_requests_and_passes_valid_ones() -> None:
    for name, status in EXPECTED.items():
        raw = (ss.TORTURE / f"{name}.dat").read_bytes()
        rejection = check_request(raw)
        if name == "invut":  # well-formed; its body is not SDP
            assert rejection is None
            sdp = raw.partition(b"\r\n\r\n")[2].decode()
            rejection = check_offer(sdp, ("PCMU", "PCMA"))
        assert rejection is not None and rejection.status == status, (name, rejection)
    for name in sorted(VALID - RESPONSES):
        raw = (ss.TORTURE / f"{name}.dat").read_bytes()
        assert check_request(raw) is None, (name, check_request(raw))
    quotbal = (ss.TORTURE / "quotbal.dat").read_bytes().replace(b"Length: 153", b"Length: 152")
    assert check_request(quotbal) == Rejection(400, "Unterminated Quoted String in To")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("c=IN IP4 127.0.0.1", "c=IN IP4 255.255.255.255"), "Media Address Not Acceptable"),
        (("c=IN IP4 127.0.0.1", "c=IN IP4 example.com"), "Media Address Not Acceptable"),
        (("c=IN IP4 127.0.0.1", "c=IN IP4 224.0.0.1/16"), "Media Address Not Acceptable"),
        (("c=IN IP4 127.0.0.1", "c=IN IP4 192.0.2.4"), "Media Address Not Allowed"),
        (("m=audio 9 ", "m=audio 0 "), "Bad Audio Port"),
        (("RTP/AVP 0 101", "RTP/AVP 18"), "No Common Codec"),
        (("m=audio", "m=video"), "Exactly One Audio Stream Required"),
        (("c=IN IP4 127.0.0.1\r\n", ""), "No Connection Address"),
    ],
)
def test_guard_refuses_offers_it_must_not_send_media_to(
    change: tuple[str, str], reason: str
) -> None:
    sdp = ss.invite("x", 5062, 5060).partition(b"\r\n\r\n")[2].decode()
    sdp = sdp.replace("a=rtpmap:0 PCMU/8000\r\n", "")
    assert check_offer(sdp, ("PCMU",), ("127.0.0.0/8",)) is None
    rejection = check_offer(sdp.replace(*change), ("PCMU",), ("127.0.0.0/8",))
    assert rejection is not None and (rejection.status, rejection.reason) == (488, reason)


def test_guard_never_sends_to_peer_names_or_broadcast() -> None:
    assert unsafe_host("127.0.0.1") is None
    assert unsafe_host("pbx.example.net", {"pbx.example.net"}) is None  # the configured registrar
    for host in ("attacker.example.com", "255.255.255.255", "224.0.0.1", "0.0.0.0", ""):
        assert unsafe_host(host) is not None, host


def test_error_response_echoes_the_transaction() -> None:
    raw = (ss.TORTURE / "mismatch01.dat").read_bytes()
    rejection = check_request(raw)
    assert rejection is not None
    response = error_response(raw, rejection, "t1").decode()
    assert response.startswith("SIP/2.0 400 CSeq Method Mismatch\r\n")
    assert "Call-ID: mismatch01.dj0234sxdfl3\r\n" in response
    assert "To: sip:j.user@example.com;tag=t1\r\n" in response
    assert response.endswith("Content-Length: 0\r\n\r\n")


def test_bad_input_is_logged_once_per_reason_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("hostile-test"), interval_s=0.2)
    with caplog.at_level(logging.WARNING, "hostile-test"):
        for _ in range(1000):
            limited.warning("rtp", "RTP packet dropped")
        time.sleep(0.25)
        limited.warning("rtp", "RTP packet dropped")
    assert [r.getMessage() for r in caplog.records] == [
        "RTP packet dropped",
        "RTP packet dropped (999 more since last logged)",
    ]
    assert limited.counts == {"rtp": 1001}


def test_rtp_source_lock_keeps_one_audio_stream() -> None:
    def rtp(pt: int, ssrc: int, n_payload: int = 160) -> bytes:
        return struct.pack(">BBHII", 0x80, pt, 1, 0, ssrc) + bytes(n_payload)

    lock = RtpSourceLock()
    assert lock.accept(rtp(0, 1), 0.0)
    assert not lock.accept(rtp(0, 2), 0.01)  # a second stream while the first one talks
    assert not lock.accept(rtp(8, 2), 0.02)
    assert lock.accept(rtp(101, 3, 4), 0.03)  # telephone-events are not locked
    assert not lock.accept(rtp(0, 1, 8000), 0.04)  # 8 KB would become 50 frames
    assert lock.accept(rtp(0, 1), 0.05)
    assert lock.accept(rtp(0, 2), 0.30)  # the first one stopped: a real source change
    assert lock.refused == 3


# --- outside: run the module in the namespace and report each test ---

INNER = sorted(name for name in list(globals()) if name.startswith("hostile_"))


@pytest.fixture(scope="module")
def inner_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, netns.Outcome], str, dict[str, Any]]:
    need(netns.available(), "a loopback-only namespace: unshare -rn (util-linux) and ip (iproute2)")
    need(ss.have_tools(), "kamailio and sipp (apt-get install kamailio sip-tester)")
    work = tmp_path_factory.mktemp("netns")
    fig_path = work / "figures.json"
    outcomes, proc = netns.run_pytest(
        Path(__file__), "hostile_*", work / "junit.xml", 180, {FIGURES_ENV: str(fig_path)}
    )
    output = proc.stdout[-4000:] + proc.stderr[-2000:]
    figs = json.loads(fig_path.read_text()) if fig_path.exists() else {}
    return outcomes, output, figs


@pytest.mark.parametrize("name", INNER)
def test_inside_loopback_namespace(
    name: str, inner_run: tuple[dict[str, netns.Outcome], str, dict[str, Any]], record_property: Any
) -> None:
    outcomes, output, figs = inner_run
    record_property("figures", json.dumps(figs))
    outcome = outcomes.get(name)
    assert outcome is not None, f"{name} did not run inside the namespace:\n{output}"
    if outcome.status == "skipped":
        pytest.skip(outcome.detail)
    assert outcome.status == "passed", outcome.detail
