"""SIP endpoint on rfcvoip (the maintained pyVoIP fork): REGISTER, answer, dial, media, REFER.

The only module that imports rfcvoip. Its threads (SIP receive, RTP receive and transmit, the
per-call callback) end here: frames and events reach the loop through
``loop.call_soon_threadsafe``, and blocking rfcvoip calls run on the endpoint's small pool.

rfcvoip 2.10.3 behaviours changed here (private API, checked against 2.10.3 only):

1. ``VoIPPhone._run_call_callback(delay=1.0)`` sleeps 1 s before the call callback, so 200 OK
   came ~1 s after the INVITE. Overridden with no delay.
2. ``SIPClient.start`` starts its receive loop through ``_delayed_recv_loop`` (a 1 s sleep), so
   responses (an outbound 200 OK, hence the ACK) waited 1 s. Replaced; it also binds the SIP
   socket to ``bind_address`` while Via/Contact/SDP carry ``advertised_address``.
3. Audio: 16-bit (never the 8-bit path). The RTP client's jitter buffer and output buffer are
   replaced by :mod:`voiceagent.telephony.sipcall` objects, so inbound frames go straight to
   the loop (no reader polling that races arrival) and ``flush`` acts on the next packet.
4. No REFER upstream: built here from its in-dialog BYE; 202 and NOTIFY sipfrag are handled.
5. No call limit upstream: beyond ``max_calls`` a new INVITE gets 486 before any 180.
   A re-INVITE is answered with the offered codec (upstream keeps the first one).
6. Telephone-events are reported only on the RTP marker bit; here a new (timestamp, event)
   pair counts too, so a lost first packet does not lose the digit.
7. ``rfcvoip.debug`` prints to stdout on every SIP event; it goes to this module's logger at
   DEBUG level instead.
8. Hostile input (``tests/telephony/test_hostile_sip.py``). ``SIPClient.recv`` is replaced:
   requests pass :func:`sipguard.check_request` first (400/416/420/505 with a reason, where
   upstream mostly stayed silent), impossible status codes are dropped, and an exception in
   rfcvoip's handlers is logged (rate-limited) instead of ending the SIP receive thread.
   Responses go to the packet's source address (upstream used the Via host: a broadcast or
   a name to resolve). Nothing is sent to a host name other than the registrar/proxy or to a
   broadcast/multicast address. A new INVITE whose SDP fails :func:`sipguard.check_offer`
   gets 488. The RTP receive thread survives any packet (upstream only caught parse errors),
   and takes audio from one SSRC at a time, in packets of at most 160 ms.
9. No toll-fraud relay. A new INVITE from a source outside ``SipConfig.allowed_sources``
   (default: the registrar's and outbound proxy's addresses) gets 403 Forbidden, and one whose
   Request-URI user is not in ``served_numbers`` (default: ``user``) gets 404 Not Found, both
   before any 100/180, RTP port or call thread. Order: 403, then 486 (limit), 488 (offer),
   404. The endpoint only ever sends INVITEs from :meth:`SipEndpoint.dial`; nothing inbound
   leads to one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import rfcvoip
import rfcvoip.VoIP.VoIP
from rfcvoip import RTP, SIP
from rfcvoip.SIP import SIPMessageType
from rfcvoip.SIPTransport import SIPConnection, SIPFramingError
from rfcvoip.VoIP import CallState, InvalidStateError, VoIPPhone
from rfcvoip.VoIP.status import PhoneStatus
from rfcvoip.VoIP.VoIP import _payload_type_from_media_method

from voiceagent.telephony.sipcall import (
    SIPFRAG_STATUS,
    PendingRefer,
    RtpSourceLock,
    SipCall,
    TransferResult,
    build_refer,
    dtmf_parser,
)
from voiceagent.telephony.sipconfig import DialResult, SipConfig, dial_result_for
from voiceagent.telephony.sipguard import (
    RateLimitedLog,
    Rejection,
    check_inbound_invite,
    check_offer,
    check_request,
    error_response,
    served_user,
    source_networks,
    unsafe_host,
    valid_response,
)

log = logging.getLogger(__name__)
dropped = RateLimitedLog(log)
"""Malformed SIP/RTP: one warning per reason per 10 s, counts in ``dropped.counts``."""
_CONTACT_HOST = re.compile(r"sips?:(?:[^@>;]*@)?(\[[^\]]+\]|[^:;>?\s]+)")

CallHandler = Callable[[SipCall], Awaitable[None]]


class _Dialog:
    """``CallControl`` for one rfcvoip call (methods block; run them on the pool)."""

    def __init__(self, endpoint: SipEndpoint, call: Any) -> None:
        self._ep = endpoint
        self._call = call

    def hangup(self) -> None:
        """Send BYE (if still up) and stop the RTP threads."""
        self._ep._sessions.pop(self._call.call_id, None)
        try:
            if self._call._get_state() == CallState.ANSWERED:
                self._call.hangup()
        except InvalidStateError:
            pass

    def refer(self, target: str) -> TransferResult:
        """Send REFER with retransmissions (RFC 3261 timer E) and wait for 2xx and NOTIFY."""
        phone = self._ep._phone
        sip = phone.sip
        if self._call._get_state() != CallState.ANSWERED:
            return TransferResult(None)
        uri = target if target.startswith(("sip:", "sips:", "tel:")) else None
        uri = uri or sip._remote_user_uri(target)
        message = build_refer(sip, self._call.request, uri).encode("utf8")
        pending = PendingRefer()
        phone.refers[self._call.call_id] = pending
        destination = sip.dialog_target(self._call.request)
        try:
            interval, deadline = 0.5, time.monotonic() + 8.0
            sip.send_raw(message, destination)
            while not pending.answered.wait(interval) and time.monotonic() < deadline:
                if pending.status is None:
                    sip.send_raw(message, destination)
                interval = min(interval * 2, 4.0)
            if pending.status is not None and 200 <= pending.status < 300:
                pending.notified.wait(self._ep.config.notify_wait_s)
            return TransferResult(pending.status, pending.notify_status)
        finally:
            phone.refers.pop(self._call.call_id, None)


def _adopt_offered_codec(
    call: Any, request: Any, codecs: tuple[str, ...], priorities: dict[str, int]
) -> None:
    """Before rfcvoip answers a re-INVITE: switch RTP to a codec the new offer contains.

    Upstream ``renegotiate`` answers with the codecs of the first offer (PCMU to a PCMA-only
    re-INVITE) and keeps sending them.
    """
    audio = [m for m in request.body.get("m", []) if m.get("type") == "audio"]
    clients = call._rtp_clients_snapshot()
    if len(audio) != 1 or len(clients) != 1:
        return
    offered: dict[int, Any] = {}
    for method in audio[0].get("methods", []):
        try:
            codec = _payload_type_from_media_method(audio[0], method)
        except (KeyError, ValueError):
            continue
        if codec.name in codecs or codec == RTP.PayloadType.EVENT:
            offered[int(method)] = codec
    try:
        payload_type, codec = RTP.select_transmittable_audio_codec(offered, priorities)
    except RTP.RTPParseError:
        return  # nothing we can send: rfcvoip's own answer stands
    client = clients[0]
    client.assoc = offered
    client.preference, client.preference_payload_type = codec, payload_type
    client._telephone_event_pt = client._find_telephone_event_payload_type()
    for group in getattr(call, "_rtp_media_groups", []):
        group["codecs"] = dict(offered)


class _Phone(VoIPPhone):
    """VoIPPhone with the fixes listed in the module docstring."""

    def __init__(self, endpoint: SipEndpoint, **kwargs: Any) -> None:
        self.endpoint = endpoint
        self.final_codes: dict[str, int] = {}
        self.refers: dict[str, PendingRefer] = {}
        self.answer_lock = threading.Lock()
        """Answering and handling a CANCEL exclude each other (upstream races them: a CANCEL
        handled while ``answer()`` runs got a 487 and then a 200 for the same INVITE)."""
        super().__init__(**kwargs)

    @staticmethod
    def _run_call_callback(callback: Any, call: Any, delay: float = 0.0) -> None:
        VoIPPhone._run_call_callback(callback, call, 0.0)  # upstream default: sleep 1 s first

    def _prioritized_enabled_codecs(self) -> list[Any]:
        return [RTP.PayloadType[name] for name in self.endpoint.config.codecs]

    def live_calls(self) -> int:
        """Calls not yet ended (ringing, dialing or answered)."""
        return sum(1 for c in self._calls_snapshot() if c._get_state() != CallState.ENDED)

    def _callback_MSG_Cancel(self, request: Any) -> None:  # noqa: N802 (upstream name)
        with self.answer_lock:
            super()._callback_MSG_Cancel(request)

    def _callback_MSG_Invite(self, request: Any) -> None:  # noqa: N802 (upstream name)
        call_id = str(request.headers.get("Call-ID", "") or "").strip()
        to_tag = request.headers.get("To", {}).get("tag", "")
        is_new = call_id and not to_tag and not self.has_call_id(call_id)
        if is_new and self._not_ours(request, None):  # 403 first: nothing about us leaks
            return
        if is_new and self.live_calls() >= self.endpoint.config.max_calls:
            self.sip.send_response(request, self.sip.gen_busy(request))
            return
        call = None if is_new else self._get_call(call_id)
        sdp = request.body_text or ""
        if (is_new or (call is not None and sdp.strip())) and self._refused(request, sdp):
            return
        if is_new and self._not_ours(request, self.endpoint.served):
            return
        if call is not None and call._get_state() == CallState.ANSWERED:
            _adopt_offered_codec(call, request, self.endpoint.config.codecs, self.codec_priorities)
        super()._callback_MSG_Invite(request)

    def _invite_targets_local_account(self, request: Any) -> bool:
        """``served_numbers`` decides (upstream answers only its own user, by R-URI or To)."""
        return served_user(request.raw, self.endpoint.served)

    def _not_ours(self, request: Any, served: frozenset[str] | None) -> bool:
        """403 to a new INVITE from a source not allowed, 404 for a number not ``served``."""
        source = getattr(request, "source_address", None)
        rejection = check_inbound_invite(
            request.raw, str(source[0]) if source else None, self.endpoint.allowed_networks, served
        )
        if rejection is None:
            return False
        dropped.warning(
            f"policy-{rejection.status}",
            "INVITE from %s answered %d %s",
            source,
            rejection.status,
            rejection.reason,
        )
        response = error_response(request.raw, rejection, self.sip.gen_tag())
        self.sip.send_raw(response, self.sip.response_target(request))
        return True

    def _refused(self, request: Any, sdp: str) -> bool:
        """Answer 488 to an offer the agent must not send media to (re-INVITEs included)."""
        cfg = self.endpoint.config
        rejection = check_offer(sdp, cfg.codecs, cfg.media_networks)
        if rejection is None:
            return False
        dropped.warning("offer", "INVITE answered 488: %s", rejection.reason)
        response = error_response(request.raw, rejection, self.sip.gen_tag())
        self.sip.send_raw(response, self.sip.response_target(request))
        return True

    def _callback_MSG_Bye(self, request: Any) -> None:  # noqa: N802 (upstream name)
        super()._callback_MSG_Bye(request)
        session = self.endpoint._sessions.pop(request.headers.get("Call-ID"), None)
        if session is not None:
            session.remote_hangup()

    def callback(self, request: Any) -> None:
        """SIP messages from the receive thread; responses are noted before rfcvoip acts."""
        if request.type == SIPMessageType.RESPONSE:
            cseq = request.headers.get("CSeq", {})
            method = cseq.get("method") if isinstance(cseq, dict) else None
            call_id = request.headers.get("Call-ID")
            code = int(request.status)
            if method == "REFER":
                self._on_refer_response(call_id, code)
                return
            if method == "INVITE" and code >= 300:
                self.final_codes[call_id] = code
            super().callback(request)
            if method == "INVITE" and 200 <= code < 300:
                self.endpoint._on_outbound_answered(call_id)  # after rfcvoip sent the ACK
            return
        super().callback(request)

    def _on_refer_response(self, call_id: str, code: int) -> None:
        pending = self.refers.get(call_id)
        if pending is not None and code >= 200:
            pending.status = code
            pending.answered.set()

    def handle_notify(self, message: Any, upstream: Callable[[Any], None]) -> None:
        """In-dialog NOTIFY for a REFER we sent: 200 OK and note the sipfrag status."""
        call_id = message.headers.get("Call-ID")
        event = str(message.headers.get("Event", "") or "").strip().lower()
        pending = self.refers.get(call_id)
        if pending is None or not event.startswith("refer"):
            upstream(message)
            return
        self.sip.send_response(message, self.sip.gen_ok(message))
        match = SIPFRAG_STATUS.search(getattr(message, "body_text", "") or "")
        if match:
            pending.notify_status = int(match.group(1))
            if pending.notify_status >= 200:
                pending.notified.set()


def _sip_start(sip: Any, bind_host: str) -> None:
    """``SIPClient.start`` without the 1 s receive delay, bound to ``bind_host``."""
    if sip.NSD:
        raise RuntimeError("SIP client already started")
    sip.NSD = True
    target = sip.proxy_target or sip.server_target
    sip.connection = SIPConnection(
        bind_host,
        sip.myPort,
        target,
        tls_context=sip.tls_context,
        tls_server_name=sip.tls_server_name,
    )
    sip.connection.open()
    sip.s = sip.connection.socket
    sip.out = sip.s
    sip.register()
    threading.Thread(target=sip.recv_loop, name="SIP Receive", daemon=True).start()


class SipEndpoint:
    """A registered SIP user agent that answers calls into ``handler`` and dials out."""

    def __init__(self, config: SipConfig, handler: CallHandler | None = None) -> None:
        self.config = config
        self._handler = handler
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sip")
        self._sessions: dict[str, SipCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._phone: Any = None
        self.served = frozenset(config.served_numbers or (config.user,))
        """Request-URI users answered; other INVITEs get 404."""
        self.allowed_networks = source_networks(config.allowed_sources)
        """Networks whose INVITEs are handled (filled from the registrar/proxy when empty)."""

    async def start(self) -> None:
        """Bind, REGISTER (raises if the registrar does not accept us)."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(self._pool, self._start_blocking)

    def _start_blocking(self) -> None:
        cfg = self.config
        proxy_host, _, proxy_port = cfg.outbound_proxy.rpartition(":")
        if not self.allowed_networks:
            self.allowed_networks = source_networks(
                ip for host in (cfg.registrar_host, proxy_host) if host for ip in _addresses(host)
            )
        phone = _Phone(
            self,
            server=cfg.registrar_host,
            port=cfg.registrar_port,
            username=cfg.user,
            password=cfg.password,
            myIP=cfg.public_address,
            callCallback=self._on_incoming if self._handler is not None else None,
            sipPort=cfg.sip_port,
            rtpPortLow=cfg.rtp_port_low,
            rtpPortHigh=cfg.rtp_port_high,
            proxy=proxy_host or None,
            proxyPort=int(proxy_port) if proxy_port else None,
            codec_priorities={name: 1000 - i for i, name in enumerate(cfg.codecs)},
            audio_sample_rate=8000,
            audio_channels=1,
            audio_bit_depth=16,
            audio_output_mode="realtime",
        )
        phone.myIP = cfg.bind_address  # RTP binds here; the SIP client keeps the public one
        sip = phone.sip
        sip.register_timeout = cfg.register_timeout_s
        sip.start = lambda: _sip_start(sip, cfg.bind_address)
        _harden(sip, {cfg.registrar_host, proxy_host})
        upstream_notify = sip._handle_notify
        sip._handle_notify = lambda message: phone.handle_notify(message, upstream_notify)
        self._phone = phone
        phone.start()
        if phone.get_status() != PhoneStatus.REGISTERED:
            phone.stop()
            raise ConnectionError(f"REGISTER failed: {phone.get_status()}")

    @property
    def active_calls(self) -> int:
        """Calls the phone holds that have not ended."""
        return int(self._phone.live_calls()) if self._phone is not None else 0

    async def stop(self) -> None:
        """Hang up every call, de-REGISTER and release the threads."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        if self._phone is not None:
            await loop.run_in_executor(self._pool, self._phone.stop)
        self._sessions.clear()
        self._pool.shutdown(wait=False)

    # --- inbound ---

    def _session_for(self, call: Any, direction: str, caller_id: str) -> SipCall:
        assert self._loop is not None
        dialog = _Dialog(self, call)
        session = SipCall(
            call.call_id,
            caller_id,
            direction,
            dialog,
            self._pool,
            self._loop,
            self.config.media_timeout_s,
        )
        for client in call._rtp_clients_snapshot():
            client.parse_packet = _guarded_rtp(client.parse_packet)
            client.pmin = session.inbound_sink
            client.pmout = session.outbound
            client.parse_telephone_event = dtmf_parser(session)
        self._sessions[call.call_id] = session
        return session

    def _on_incoming(self, call: Any) -> None:
        """On rfcvoip's call-callback thread: answer now and hand the call to the loop."""
        caller = str(call.request.headers.get("From", {}).get("number", "") or "")
        session = self._session_for(call, "inbound", caller)
        assert self._phone is not None
        try:
            with self._phone.answer_lock:
                if call._get_state() != CallState.RINGING:
                    raise InvalidStateError("cancelled before the answer")
                call.answer()
        except InvalidStateError:
            self._sessions.pop(call.call_id, None)
            return
        session.answered_at = time.monotonic()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._spawn, session)

    def _spawn(self, session: SipCall) -> None:
        task = asyncio.get_running_loop().create_task(self._run_handler(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, session: SipCall) -> None:
        assert self._handler is not None
        try:
            await self._handler(session)
        except Exception:
            log.exception("call %s: handler failed", session.call_id)
        finally:
            if not session.ended:
                await session.hangup()

    # --- outbound ---

    def _on_outbound_answered(self, call_id: str) -> None:
        """SIP thread, after the 200 OK was ACKed: attach media to the loop."""
        call = self._phone._get_call(call_id)
        if call is None or call_id in self._sessions or call.remote_sip_message is None:
            return
        if call._get_state() != CallState.ANSWERED or call.request.headers.get("To") is None:
            return
        number = str(call.request.headers["To"].get("number", "") or "")
        self._session_for(call, "outbound", number)

    async def dial(self, number: str, ring_timeout_s: float = 30.0) -> SipCall | DialResult:
        """Call ``number`` (user part or SIP URI); the call comes back only once answered."""
        if self._phone is None or self.active_calls >= self.config.max_calls:
            return DialResult.FAILED
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        self._phone.sip.invite_timeout = max(1.0, ring_timeout_s)
        try:
            call = await loop.run_in_executor(self._pool, self._phone.call, number)
        except TimeoutError:
            return DialResult.NO_ANSWER
        except Exception as exc:  # rfcvoip raises plain exceptions for socket and SDP errors
            log.warning("dial failed: %s", exc)
            return DialResult.FAILED
        call_id = call.call_id
        while True:
            session = self._sessions.get(call_id)
            if session is not None and session.direction == "outbound":
                session.answered_at = time.monotonic()
                return session
            code = self._phone.final_codes.pop(call_id, None)
            if code is not None:
                return dial_result_for(code)
            if call._get_state() == CallState.ENDED:
                return DialResult.FAILED
            if time.monotonic() - started >= ring_timeout_s:
                await loop.run_in_executor(self._pool, _cancel, call)
                loop.call_later(10.0, self._phone.final_codes.pop, call_id, None)  # the 487
                return DialResult.NO_ANSWER
            await asyncio.sleep(0.01)


def _addresses(host: str) -> set[str]:
    """Every address of ``host`` (the configured registrar or proxy, never a peer's name)."""
    info = socket.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_DGRAM)
    return {str(entry[4][0]) for entry in info}


def _harden(sip: Any, trusted_hosts: set[str]) -> None:
    """Install the hostile-input fixes (item 8 of the module docstring) on one SIP client."""
    upstream_send, upstream_dialog_target = sip.send_raw, sip.dialog_target
    trusted = {host for host in trusted_hosts if host}

    def send_raw(data: bytes, target: tuple[str, int] | None = None) -> None:
        why = unsafe_host(str(target[0]), trusted) if target is not None else None
        if why is not None:
            dropped.warning("destination", "not sending SIP to %s: %s", target, why)
            return
        upstream_send(data, target)

    def response_target(request: Any) -> tuple[str, int]:
        source = getattr(request, "source_address", None)
        return (str(source[0]), int(source[1])) if source else sip.signal_target()

    def dialog_target(request: Any) -> tuple[str, int]:
        contact = str(request.headers.get("Contact", "") or "")
        match = _CONTACT_HOST.search(contact)
        if sip.proxy is None and (match is None or unsafe_host(match.group(1), trusted)):
            return response_target(request)  # where the INVITE came from
        return upstream_dialog_target(request)

    def sip_target_from_uri(uri: str, default_port: int | None = 5060) -> tuple[str, int]:
        match = _CONTACT_HOST.search(uri)
        why = unsafe_host(match.group(1) if match else "", trusted)
        if why is not None:  # upstream resolves with NAPTR/SRV/A lookups (ACK to a stray 2xx)
            raise ValueError(f"no request to {uri[:80]!r}: {why}")
        return upstream_target(uri, default_port)

    upstream_target = sip._sip_target_from_uri
    sip._sip_target_from_uri = sip_target_from_uri
    sip.send_raw, sip.response_target, sip.dialog_target = send_raw, response_target, dialog_target
    sip.recv = lambda: _recv(sip)


def _recv(sip: Any) -> None:
    """``SIPClient.recv`` that checks requests first and survives any handler exception."""
    connection = sip.connection
    if connection is None:
        return
    try:
        raw = connection.recv_raw_message()
    except SIPFramingError:
        dropped.warning("framing", "SIP stream framing error")
        return
    if sip._is_keepalive_packet(raw):
        return
    source = connection.last_recv_address
    if raw.startswith(b"SIP/"):
        if not valid_response(raw):
            dropped.warning("response", "dropped SIP response with a bad status line")
            return
    else:
        rejection = check_request(raw)
        if rejection is not None:
            _reject(sip, raw, rejection, source)
            return
    try:
        message = sip._message_from_raw(raw)
    except Exception as exc:  # rfcvoip raises SIPParseError, ValueError, KeyError, ...
        if not raw.startswith(b"SIP/"):
            _reject(sip, raw, Rejection(400, "Malformed Message"), source, str(exc))
        return
    try:
        sip.parse_message(message)
    except Exception as exc:
        start = raw.split(b"\r\n", 1)[0][:80]
        dropped.warning("handler", "SIP %r dropped: rfcvoip raised %r", start, exc)


def _reject(sip: Any, raw: bytes, rejection: Rejection, source: Any, why: str = "") -> None:
    detail = f" ({why[:120]})" if why else ""
    key = f"reject-{rejection.status}-{rejection.reason}"
    dropped.warning(key, "SIP request answered %d %s%s", rejection.status, rejection.reason, detail)
    if raw.startswith(b"ACK ") or source is None:
        return  # never answer an ACK (RFC 3261 17.2.1)
    sip.send_raw(error_response(raw, rejection, sip.gen_tag()), (str(source[0]), int(source[1])))


def _guarded_rtp(upstream: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """An RTP parser that keeps one source and drops a bad packet (see ``RtpSourceLock``).

    Upstream's receive thread catches only ``RTPParseError`` and ``OSError``; anything else
    would end it and the call's inbound audio with it.
    """
    lock = RtpSourceLock()

    def parse_packet(packet: bytes) -> None:
        if not lock.accept(packet, time.monotonic()):
            dropped.warning("rtp-source", "RTP packet dropped (oversized or a second SSRC)")
            return
        try:
            upstream(packet)
        except RTP.RTPParseError:
            dropped.warning("rtp-parse", "RTP packet dropped (unparseable)")
        except Exception as exc:
            dropped.warning("rtp", "RTP packet dropped: %r", exc)

    return parse_packet


def _debug(summary: Any, detail: Any = None) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("rfcvoip: %s", detail if detail is not None else summary)


for _module in (rfcvoip, SIP, RTP, rfcvoip.VoIP.VoIP):
    _module.debug = _debug  # type: ignore[attr-defined]


def _cancel(call: Any) -> None:
    try:
        call.cancel()
    except InvalidStateError:
        pass  # answered or failed in the meantime
