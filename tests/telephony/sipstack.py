"""Real SIP peers for tests: kamailio (registrar + proxy) and sipp on 127.0.0.1, always killed."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from voiceagent.audio.g711 import alaw_to_pcm16, pcm16_to_ulaw, ulaw_to_pcm16

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sip"
PASSWORD = "s3cret"
DTMF_PCAP_DIR = Path("/usr/share/sip-tester")


def have_tools() -> bool:
    return bool(shutil.which("kamailio") and shutil.which("sipp"))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_rtp_range(n_ports: int = 16) -> tuple[int, int]:
    """An even-based block of UDP ports that are free right now."""
    for _ in range(50):
        low = random.randrange(20000, 60000, 2)
        socks = []
        try:
            for port in range(low, low + n_ports):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return low, low + n_ports - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free RTP port block")


@dataclass
class Kamailio:
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_kamailio(workdir: Path, timeout_s: float = 5.0) -> Iterator[Kamailio]:
    """Start kamailio on a free port; wait until it listens; always kill it."""
    port = free_udp_port()
    cfg = (FIXTURES / "kamailio.cfg.tmpl").read_text()
    cfg = cfg.replace("@PORT@", str(port)).replace("@PASSWORD@", PASSWORD)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg_path = workdir / "kamailio.cfg"
    cfg_path.write_text(cfg)
    rundir = workdir / "run"
    rundir.mkdir(exist_ok=True)
    log_path = workdir / "kamailio.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["kamailio", "-f", str(cfg_path), "-DD", "-E", "-Y", str(rundir), "-m", "32"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    kam = Kamailio(port, log_path, proc)
    try:
        deadline = time.monotonic() + timeout_s
        while not _udp_port_taken(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kamailio did not start:\n{kam.log()[-2000:]}")
            time.sleep(0.05)
        yield kam
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)


def _udp_port_taken(port: int) -> bool:
    """Whether some process listens on UDP ``port`` (read from /proc: probing by binding would
    race the process that is about to bind it)."""
    needle = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as f:
            if any(line.split()[1].endswith(needle) for line in list(f)[1:]):
                return True
    return False


@dataclass
class SippResult:
    rc: int
    messages: str
    """sipp's -trace_msg log: every message sent and received, with timestamps."""
    output: str

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.messages, re.MULTILINE))

    def ms_between(self, first: str, then: str) -> float:
        """Milliseconds from the first message matching ``first`` to the next matching ``then``."""
        stamps = _message_stamps(self.messages)
        t0 = next(t for t, m in stamps if re.search(first, m))
        t1 = next(t for t, m in stamps if t > t0 and re.search(then, m))
        return (t1 - t0) * 1000


_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+)", re.MULTILINE)


def _message_stamps(log: str) -> list[tuple[float, str]]:
    out = []
    parts = _STAMP.split(log)
    for stamp, body in zip(parts[1::2], parts[2::2], strict=True):
        t = datetime.strptime(stamp.split()[0] + " " + stamp.split()[1], "%Y-%m-%d %H:%M:%S.%f")
        lines = [ln.strip() for ln in body.splitlines()[1:] if ln.strip()]
        first = next((ln for ln in lines if not ln.startswith("UDP message")), "")
        out.append((t.timestamp(), first))
    return out


@dataclass
class Sipp:
    proc: asyncio.subprocess.Process
    port: int
    msg_path: Path
    timeout_s: float
    args: list[str] = field(default_factory=list)

    async def result(self) -> SippResult:
        try:
            out, _ = await asyncio.wait_for(self.proc.communicate(), self.timeout_s)
        except TimeoutError as exc:
            self.proc.kill()
            out, _ = await self.proc.communicate()
            tail = out.decode(errors="replace")[-1500:]
            raise AssertionError(f"sipp ran over {self.timeout_s}s: {tail}") from exc
        text = self.msg_path.read_text(errors="replace") if self.msg_path.exists() else ""
        return SippResult(self.proc.returncode or 0, text, out.decode(errors="replace"))

    async def listening(self, timeout_s: float = 5.0) -> None:
        """Wait until sipp has bound its SIP port (a UAS must before it is dialled)."""
        for _ in range(int(timeout_s / 0.02)):
            if _udp_port_taken(self.port) or self.proc.returncode is not None:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"sipp did not bind port {self.port}")

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def start_sipp(
    workdir: Path,
    scenario: str,
    *,
    remote: str | None = None,
    service: str = "agent",
    calls: int = 1,
    limit: int = 1,
    rate: int = 10,
    pause_ms: int = 1000,
    keys: dict[str, str] | None = None,
    timeout_s: float = 20.0,
    local_ip: str = "127.0.0.1",
    extra: tuple[str, ...] = (),
) -> Sipp:
    """Start sipp (a UAC when ``remote`` is given, else a UAS on its own free port).

    ``local_ip`` is its SIP address (any 127/8 address is loopback on Linux: a second
    source); ``extra`` are further sipp arguments.
    """
    port = free_udp_port()
    mport = free_rtp_range(4)[0]
    msg_path = workdir / f"sipp_{scenario}_{port}.msg"
    args = ["-sf", str(FIXTURES / f"{scenario}.xml"), "-i", local_ip, "-p", str(port)]
    args += ["-mi", "127.0.0.1", "-mp", str(mport)]
    args += ["-m", str(calls), "-l", str(limit), "-r", str(rate)]
    args += ["-d", str(pause_ms), "-s", service, "-nostdin", "-timeout", f"{int(timeout_s)}s"]
    args += ["-timeout_error", "-trace_msg", "-message_file", str(msg_path), "-trace_err"]
    args += ["-error_file", str(workdir / f"sipp_{port}.err")]
    for key, value in (keys or {}).items():
        args += ["-key", key, value]
    args += list(extra)
    if remote is not None:
        args.insert(0, remote)
    proc = await asyncio.create_subprocess_exec(
        "sipp",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workdir,  # scenarios name their media files relative to it
    )
    return Sipp(proc, port, msg_path, timeout_s + 5, args)


def write_ulaw_wav(path: Path, pcm16_8k: bytes) -> None:
    """A mono 8 kHz G.711 mu-law WAV (format tag 7), as sipp's rtp_stream expects."""
    ulaw = pcm16_to_ulaw(pcm16_8k)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(ulaw)) + ulaw
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def speechlike_signal(seconds: float, seed: int = 7) -> np.ndarray:
    """Speech-like test audio: band-limited noise with a syllable-rate envelope (int16)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 8000)
    noise = rng.standard_normal(n + 64)
    kernel = np.hanning(9)
    band = np.convolve(noise, kernel / kernel.sum(), mode="same")[:n]
    t = np.arange(n) / 8000
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3.1 * t) ** 2
    x = band / np.max(np.abs(band)) * envelope * 12000
    return x.astype(np.int16)


def tone(seconds: float, hz: float = 440.0, amplitude: int = 10000) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _aligned_snr(ref: np.ndarray, rec: np.ndarray) -> float:
    size = 1 << int(np.ceil(np.log2(len(ref) + len(rec))))
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    lag = int(np.argmax(corr))
    if lag > size // 2:
        lag -= size
    if lag >= 0:
        seg = rec[lag : lag + len(ref)]
        ref = ref[: len(seg)]
    else:
        ref = ref[-lag:]
        seg = rec[: len(ref)]
        ref = ref[: len(seg)]
    noise = seg - ref
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum(noise**2), 1e-9)))


def snr_db(reference: np.ndarray, received: np.ndarray, chunk: int = 4000) -> float:
    """SNR of ``received`` against ``reference``: the median over 0.5 s chunks of the reference,
    each aligned by cross-correlation on its own (a frame slip costs one chunk, not the rest)."""
    ref = reference.astype(np.float64)
    rec = received.astype(np.float64)
    scores = []
    for start in range(0, len(ref) - chunk + 1, chunk):
        part = ref[start : start + chunk]
        if np.sqrt(np.mean(part**2)) > 100:  # skip silent stretches
            scores.append(_aligned_snr(part, rec))
    if not scores:
        return _aligned_snr(ref, rec)
    return float(np.median(scores))


@dataclass
class RtpPacket:
    t: float
    """time.monotonic() at arrival."""
    pt: int
    seq: int
    pcm16: np.ndarray


class RtpSink(asyncio.DatagramProtocol):
    """The far end's media socket: records every RTP packet the agent sends, decoded."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        pt = data[1] & 0x7F
        seq = struct.unpack(">H", data[2:4])[0]
        decode = {0: ulaw_to_pcm16, 8: alaw_to_pcm16}.get(pt)
        pcm = np.frombuffer(decode(data[12:]), np.int16) if decode else np.zeros(0, np.int16)
        self.packets.append(RtpPacket(time.monotonic(), pt, seq, pcm))

    def audio(self) -> np.ndarray:
        parts = [p.pcm16 for p in self.packets if p.pt in (0, 8)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


@contextlib.asynccontextmanager
async def rtp_sink() -> AsyncIterator[tuple[RtpSink, int]]:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(RtpSink, local_addr=("127.0.0.1", 0))
    try:
        yield sink, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def dtmf_pcap(digit: str) -> Path:
    return DTMF_PCAP_DIR / f"dtmf_2833_{digit}.pcap"


# --- hostile traffic (tests/telephony/test_hostile_sip.py) ---

TORTURE = FIXTURES / "torture"
"""RFC 4475 messages, one ``<name>.dat`` each (see the README there)."""


def sip_status(message: bytes) -> int | None:
    """The status code of a SIP response, None for a request or garbage."""
    match = re.match(rb"SIP/2\.0 (\d{3}) ", message)
    return int(match.group(1)) if match else None


class SipProbe:
    """A raw SIP peer on 127.0.0.1: sends any bytes and keeps every datagram that comes back."""

    def __init__(self, bind: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.port = int(self.sock.getsockname()[1])
        self.received: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes, port: int) -> None:
        self.sock.sendto(data, ("127.0.0.1", port))

    def drain(self, wait_s: float = 0.0) -> list[bytes]:
        """Everything that arrives within ``wait_s`` (at least what is already queued)."""
        got: list[bytes] = []
        deadline = time.monotonic() + wait_s
        while True:
            self.sock.settimeout(max(0.0, deadline - time.monotonic()) or 0.0001)
            try:
                got.append(self.sock.recv(65535))
            except (TimeoutError, BlockingIOError):
                break
        self.received += got
        return got

    def exchange(self, data: bytes, port: int, wait_s: float = 0.3) -> list[bytes]:
        """Send one message; collect replies until a final response or ``wait_s``."""
        self.send(data, port)
        got: list[bytes] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            got += self.drain(0.02)
            if any((sip_status(m) or 0) >= 200 for m in got):
                got += self.drain(0.02)
                break
        return got


def invite(
    call_id: str,
    probe_port: int,
    agent_port: int,
    *,
    sdp_ip: str = "127.0.0.1",
    rtp_port: int = 9,
    codecs: str = "0 101",
) -> bytes:
    """A valid INVITE from a ``SipProbe`` (Via, Contact and SDP all on 127.0.0.1)."""
    body = (
        f"v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {sdp_ip}\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP {codecs}\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
    )
    head = (
        f"INVITE sip:agent@127.0.0.1:{agent_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{probe_port};branch=z9hG4bK{call_id};rport\r\n"
        f"From: probe <sip:5550199@127.0.0.1:{probe_port}>;tag=t{call_id}\r\n"
        f"To: <sip:agent@127.0.0.1:{agent_port}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:probe@127.0.0.1:{probe_port}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode()


def _replace_header(msg: bytes, name: bytes, value: bytes | None) -> bytes:
    lines = msg.split(b"\r\n")
    out = []
    for line in lines:
        if line.lower().startswith(name.lower() + b":"):
            if value is None:
                continue
            line = name + b": " + value
        out.append(line)
    return b"\r\n".join(out)


def _fix_length(msg: bytes) -> bytes:
    head, _, body = msg.partition(b"\r\n\r\n")
    return _replace_header(head, b"Content-Length", str(len(body)).encode()) + b"\r\n\r\n" + body


def _sdp(msg: bytes, old: bytes, new: bytes) -> bytes:
    return _fix_length(msg.replace(old, new))


MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "byte_flips": lambda r, m: bytes(
        b ^ (1 << r.randrange(8)) if r.random() < 0.02 else b for b in m
    ),
    "truncated": lambda r, m: m[: r.randrange(1, len(m))],
    "huge_header": lambda r, m: m.replace(
        b"Max-Forwards", b"X-Big: " + b"A" * 64000 + b"\r\nMax-Forwards", 1
    ),
    "no_call_id": lambda r, m: _replace_header(m, b"Call-ID", None),
    "no_cseq": lambda r, m: _replace_header(m, b"CSeq", None),
    "no_via": lambda r, m: _replace_header(m, b"Via", None),
    "bad_cseq": lambda r, m: _replace_header(m, b"CSeq", b"x INVITE"),
    "cl_text": lambda r, m: _replace_header(m, b"Content-Length", b"abc"),
    "cl_negative": lambda r, m: _replace_header(m, b"Content-Length", b"-5"),
    "cl_huge": lambda r, m: _replace_header(m, b"Content-Length", b"99999999999999999999"),
    "sdp_no_m": lambda r, m: _sdp(m, m[m.index(b"m=audio") : m.index(b"a=rtpmap:0")], b""),
    "sdp_port0": lambda r, m: _sdp(m, b"m=audio 9 ", b"m=audio 0 "),
    "sdp_unknown_codecs": lambda r, m: _sdp(m, b"RTP/AVP 0 101", b"RTP/AVP 98 99"),
    "sdp_c_broadcast": lambda r, m: _sdp(m, b"c=IN IP4 127.0.0.1", b"c=IN IP4 255.255.255.255"),
    "sdp_c_hostname": lambda r, m: _sdp(m, b"c=IN IP4 127.0.0.1", b"c=IN IP4 example.com"),
    "sdp_garbage": lambda r, m: _sdp(
        m, b"v=0", b"v=0\r\n" + bytes(r.randrange(256) for _ in range(64))
    ),
    "via_broadcast": lambda r, m: re.sub(
        rb"Via: SIP/2.0/UDP [^;]+;",
        b"Via: SIP/2.0/UDP 255.255.255.255:5060;",
        m.replace(b";rport", b""),
    ),
    "via_hostname": lambda r, m: re.sub(
        rb"Via: SIP/2.0/UDP [^;]+;",
        b"Via: SIP/2.0/UDP attacker.example.com;",
        m.replace(b";rport", b""),
    ),
    "via_maddr": lambda r, m: m.replace(b";rport", b";maddr=224.0.0.1;ttl=16"),
    "contact_hostname": lambda r, m: re.sub(
        rb"Contact: <[^>]+>", b"Contact: <sip:probe@attacker.example.com>", m
    ),
    "request_uri_garbage": lambda r, m: m.replace(b"INVITE sip:", b"INVITE \x00\xff<<sip:", 1),
    "binary_noise": lambda r, m: bytes(r.randrange(256) for _ in range(r.randrange(1, 1500))),
}
"""Named ways to break a valid INVITE (each takes a seeded ``random.Random``)."""


class LoopbackSniffer:
    """Every IPv4 packet on ``lo`` (an AF_PACKET socket: needs the namespace's CAP_NET_RAW)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.1)
        self.destinations: Counter[str] = Counter()
        self.non_ipv4 = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sniffer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.sock.recv(70000)
            except TimeoutError:
                continue
            except OSError:
                return
            if frame[12:14] == b"\x08\x00":
                self.destinations[socket.inet_ntoa(frame[30:34])] += 1
            else:
                self.non_ipv4 += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@contextlib.asynccontextmanager
async def sip_agent(
    kam: Kamailio, handler: Callable[..., Awaitable[None]] | None, **overrides: Any
) -> AsyncIterator[Any]:
    """The agent's SIP endpoint registered on ``kam``, on free ports; stopped afterwards."""
    from voiceagent.telephony.pyvoip import SipConfig, SipEndpoint

    low, high = free_rtp_range()
    settings: dict[str, Any] = {
        "registrar_host": "127.0.0.1",
        "registrar_port": kam.port,
        "user": "agent",
        "password": PASSWORD,
        "bind_address": "127.0.0.1",
        "sip_port": free_udp_port(),
        "rtp_port_low": low,
        "rtp_port_high": high,
    }
    endpoint = SipEndpoint(SipConfig(**(settings | overrides)), handler)
    await asyncio.wait_for(endpoint.start(), 10)
    try:
        yield endpoint
    finally:
        await asyncio.wait_for(endpoint.stop(), 10)
