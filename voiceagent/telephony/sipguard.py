"""Checks on SIP and SDP from the network before rfcvoip acts on them (no rfcvoip import).

rfcvoip parses leniently and answers few errors (RFC 4475 torture messages mostly got no
answer, or 505 for a request line with extra spaces). These checks follow RFC 3261 and
RFC 4475: a request that is parseable enough to answer gets 400 (or 416/420/505) with a
reason; responses with impossible status codes are dropped; an SDP offer whose media would
go to a host name, a broadcast or multicast address, or outside the allowed networks gets
488, so a forged INVITE cannot turn the agent into an RTP reflector or a DNS client.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

COMPACT = {
    "i": "call-id",
    "f": "from",
    "t": "to",
    "l": "content-length",
    "v": "via",
    "m": "contact",
    "c": "content-type",
    "s": "subject",
    "k": "supported",
}
"""RFC 3261 7.3.3 compact header names."""
REQUIRED = ("via", "from", "to", "call-id", "cseq")
SINGLE = ("from", "to", "call-id", "cseq", "content-length", "max-forwards")
URI_SCHEMES = (b"sip", b"sips", b"tel")
AUDIO_PAYLOADS = {"PCMU": 0, "PCMA": 8}
"""Static RTP payload numbers of the codecs the agent speaks."""
_REQUEST_LINE = re.compile(rb"^([!-~]+) ([!-~]+) (SIP/\d+\.\d+)$")
_QUOTE = re.compile(r'\\.|"')


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request is answered with an error instead of being handled."""

    status: int
    reason: str
    extra: str = ""
    """Additional header lines (each ending in CRLF) for the error response."""


def _headers(head: bytes) -> list[tuple[str, str]]:
    """Header (canonical lower-case name, value) pairs with folded lines joined."""
    out: list[tuple[str, str]] = []
    for line in head.decode("utf-8", "replace").split("\r\n")[1:]:
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        out.append((COMPACT.get(key, key), value.strip()))
    return out


def check_request(raw: bytes) -> Rejection | None:
    """Reject a request that RFC 3261/4475 says must not be processed; None when acceptable."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return Rejection(400, "Incomplete Header Section")
    start = head.split(b"\r\n", 1)[0]
    match = _REQUEST_LINE.match(start)
    if match is None:
        return Rejection(400, "Malformed Request-Line")
    method, uri, version = match.groups()
    if version != b"SIP/2.0":
        return Rejection(505, "Version Not Supported")
    if uri.split(b":", 1)[0].lower() not in URI_SCHEMES or b":" not in uri:
        return Rejection(416, "Unsupported URI Scheme")
    headers = _headers(head)
    names = [name for name, _ in headers]
    for name in REQUIRED:
        if name not in names:
            return Rejection(400, f"Missing {name.title()}")
    for name in SINGLE:
        if names.count(name) > 1:
            return Rejection(400, f"Multiple {name.title()} values")
    values = dict(headers)
    return _check_values(method.decode("ascii", "replace"), values, len(body))


def _check_values(method: str, values: dict[str, str], n_body_bytes: int) -> Rejection | None:
    cseq = re.fullmatch(r"(\d{1,10})\s+(\S+)", values["cseq"])
    if cseq is None or int(cseq.group(1)) >= 2**31:
        return Rejection(400, "Bad CSeq")
    if cseq.group(2) != method:
        return Rejection(400, "CSeq Method Mismatch")
    forwards = values.get("max-forwards")
    if forwards is not None and not (forwards.isdigit() and int(forwards) <= 255):
        return Rejection(400, "Bad Max-Forwards")
    length = values.get("content-length")
    if length is not None:
        if not (length.isdigit() and len(length) <= 9):
            return Rejection(400, "Bad Content-Length")
        if int(length) > n_body_bytes:
            return Rejection(400, "Content-Length Larger Than Body")  # RFC 3261 18.3 (UDP)
    for name in ("from", "to"):
        if _QUOTE.sub(lambda m: "" if m.group() != '"' else '"', values[name]).count('"') % 2:
            return Rejection(400, f"Unterminated Quoted String in {name.title()}")
    require = values.get("require", "").strip()
    if require and method not in ("ACK", "CANCEL"):
        return Rejection(420, "Bad Extension", f"Unsupported: {require}\r\n")
    return None


def valid_response(raw: bytes) -> bool:
    """A response whose status code is in 100-699 (RFC 3261 7.2); others are dropped."""
    match = re.match(rb"SIP/2\.0 (\d+)", raw)
    return match is not None and 100 <= int(match.group(1)) <= 699


def unsafe_host(host: str, trusted: Iterable[str] = ()) -> str | None:
    """Why the agent must not send to ``host`` (None when it may)."""
    if host in trusted:
        return None
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "a host name from the network (no DNS for peer-supplied names)"
    if address.is_multicast or address.is_unspecified or str(address) == "255.255.255.255":
        return "a broadcast, multicast or unspecified address"
    return None


def check_offer(sdp: str, codecs: Iterable[str], networks: Iterable[str] = ()) -> Rejection | None:
    """Reject (488) an SDP offer the agent cannot or must not send media to."""
    lines = [line.strip() for line in sdp.replace("\r\n", "\n").split("\n")]
    audio = [line for line in lines if line.startswith("m=audio ")]
    if len(audio) != 1:
        return Rejection(488, "Exactly One Audio Stream Required")
    fields = audio[0].split()
    if len(fields) < 4 or not fields[1].isdigit() or not 0 < int(fields[1]) < 65536:
        return Rejection(488, "Bad Audio Port")
    wanted = {AUDIO_PAYLOADS[name] for name in codecs if name in AUDIO_PAYLOADS}
    names = {m.group(1) for m in re.finditer(r"a=rtpmap:(\d+) (PCMU|PCMA)/8000", sdp)}
    offered = {int(p) for p in fields[3:] if p.isdigit()} | {int(p) for p in names}
    if not wanted & offered:
        return Rejection(488, "No Common Codec")
    addresses = [line.split()[-1] for line in lines if line.startswith("c=")]
    if not addresses:
        return Rejection(488, "No Connection Address")
    allowed = [ipaddress.ip_network(n, strict=False) for n in networks]
    for host in addresses:
        why = unsafe_host(host.split("/")[0])
        if why is not None:
            return Rejection(488, "Media Address Not Acceptable")
        if allowed and not any(ipaddress.ip_address(host.split("/")[0]) in n for n in allowed):
            return Rejection(488, "Media Address Not Allowed")
    return None


_REQUEST_USER = re.compile(rb"^[A-Z]+ (?:sips?:([^@;?>\s]*)@|tel:([^;?>\s]*))")


def request_user(raw: bytes) -> str:
    """The user part of the Request-URI (``sip:user@host``, ``tel:number``); "" when none."""
    match = _REQUEST_USER.match(raw)
    if match is None:
        return ""
    user = (match.group(1) or match.group(2) or b"").split(b":", 1)[0]  # drop a password
    return user.decode("utf-8", "replace")


def source_networks(
    entries: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Parse IPs and CIDRs (``10.0.0.5``, ``192.0.2.0/24``); raises ValueError on a bad one."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def check_inbound_invite(
    raw: bytes,
    source_host: str | None,
    networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
    served: Iterable[str] | None,
) -> Rejection | None:
    """No toll-fraud relay: whether the agent may answer this new INVITE (None) or not.

    403 for a source outside ``networks``, 404 for a Request-URI user not in ``served``
    (not checked when ``served`` is None).
    """
    try:
        address = ipaddress.ip_address((source_host or "").strip("[]"))
    except ValueError:
        return Rejection(403, "Forbidden")
    if not any(address in network for network in networks):
        return Rejection(403, "Forbidden")
    if served is not None and not served_user(raw, served):
        return Rejection(404, "Not Found")
    return None


def served_user(raw: bytes, served: Iterable[str]) -> bool:
    """Whether the Request-URI user is one of ``served`` (case-insensitive)."""
    return request_user(raw).casefold() in {user.casefold() for user in served}


def error_response(raw: bytes, rejection: Rejection, to_tag: str) -> bytes:
    """An error response built from the request's own Via/From/To/Call-ID/CSeq lines."""
    head = raw.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
    keep: list[str] = []
    for line in head.split("\r\n")[1:]:
        name = line.partition(":")[0].strip().lower()
        name = COMPACT.get(name, name)
        if name == "to" and ";tag=" not in line.replace(" ", ""):
            line += f";tag={to_tag}"
        if name in ("via", "from", "to", "call-id", "cseq"):
            keep.append(line)
    status = f"SIP/2.0 {rejection.status} {rejection.reason}\r\n"
    return (status + "".join(f"{k}\r\n" for k in keep) + rejection.extra).encode() + (
        b"Content-Length: 0\r\n\r\n"
    )


class RateLimitedLog:
    """Logs a warning once per key per interval, with how many were suppressed since."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._log = logger
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        """Events per key since start (never reset)."""

    def warning(self, key: str, message: str, *args: object) -> None:
        """Count the event; log it unless the same key was logged within the interval."""
        now = time.monotonic()
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if now - self._last.get(key, -1e9) < self._interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        more = f" ({suppressed} more since last logged)" if suppressed else ""
        self._log.warning(message + more, *args)
