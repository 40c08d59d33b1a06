"""Asterisk Manager Interface (AMI) client: transfer targets (Setvar) and outbound calls.

AMI is a line protocol over TCP: a ``Asterisk Call Manager/x.y.z`` banner, then messages of
``Key: Value`` lines (CR LF) ending with an empty line. We send ``Action:`` messages with a unique
``ActionID``; Asterisk answers each with a ``Response:`` carrying that ActionID, and interleaves
``Event:`` messages (an ``OriginateResponse`` event carries both ``Event`` and ``Response``).
Events are broadcast to every manager session, so ActionIDs get a random per-client prefix.

One `AmiClient` per worker process keeps one connection, pings it, and reconnects with backoff
when it drops; actions in flight then fail with `AmiDisconnectedError`. Every value is checked
before anything is written: a CR or LF in a value would start a new header or a new action.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from voiceagent.telephony.audiosocket import TransferHook
from voiceagent.telephony.sipconfig import DialResult

log = logging.getLogger(__name__)

DEFAULT_PORT = 5038
BANNER_PREFIX = "Asterisk Call Manager/"
CID_VAR_PREFIX = "VOICEAGENT_CID_"
"""Global set by ``[from-carrier]``: the inbound caller's number, read once the call connects."""
_CALLER = re.compile(r"\+?[0-9]{3,20}")
XFER_VAR_PREFIX = "VOICEAGENT_XFER_"
"""Global read by ``[voiceagent-after]``: ``VOICEAGENT_XFER_${FILTER(0123456789abcdef,uuid)}``."""
DIAL_CONTEXT = "voiceagent-dial"
"""Context of the Local channel's ``;2`` half, which dials the debtor (``_X.``: digits only)."""
AGENT_CONTEXT = "voiceagent-agent"
"""Where the answered ``;1`` half continues (``s,1``): AudioSocket to the agent."""
_MAX_LINES = 512
_MAX_LINE_BYTES = 64 * 1024
_NUMBER = re.compile(r"\+?[0-9]{2,20}")
_TARGET = re.compile(r"[a-z0-9_]{1,64}")
_VAR_VALUE = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


class AmiError(Exception):
    """Base class of every AMI failure."""


class AmiConnectionError(AmiError):
    """Could not connect, or the peer is not an Asterisk manager."""


class AmiDisconnectedError(AmiConnectionError):
    """The connection dropped while an action waited for its response."""


class AmiAuthError(AmiError):
    """Asterisk refused the username/secret (``Message: Authentication failed``)."""


class AmiProtocolError(AmiError):
    """Asterisk sent something that is not AMI framing."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"AMI {action} failed: {message}")
        self.action = action
        self.message = message


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message: its ``Key: Value`` lines in order (keys compare case-insensitively)."""

    fields: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key``."""
        key = key.lower()
        return next((v for k, v in self.fields if k.lower() == key), default)

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` (``Variable`` may repeat)."""
        key = key.lower()
        return [v for k, v in self.fields if k.lower() == key]


class DialOutcome(Enum):
    """What became of an originated call."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    FAILED = "failed"

    @property
    def dial_result(self) -> DialResult | None:
        """The SIP adapter's `DialResult` for the same outcome (``None`` when answered)."""
        return _DIAL_RESULTS[self]


_DIAL_RESULTS = {
    DialOutcome.ANSWERED: None,
    DialOutcome.BUSY: DialResult.BUSY,
    DialOutcome.NO_ANSWER: DialResult.NO_ANSWER,
    DialOutcome.CONGESTION: DialResult.FAILED,
    DialOutcome.FAILED: DialResult.FAILED,
}
# OriginateResponse's Reason is the last control frame the channel saw (AST_CONTROL_*):
# 1 hangup, 2 ring, 3 ringing (then the Timeout ran out), 4 answer, 5 busy, 8 congestion;
# 0 means no control frame at all (channel not created, or no ringing before the timeout).
_REASONS = {
    2: DialOutcome.NO_ANSWER,
    3: DialOutcome.NO_ANSWER,
    5: DialOutcome.BUSY,
    8: DialOutcome.CONGESTION,
}


def dial_outcome_for(response: str, reason: int) -> DialOutcome:
    """Map an ``OriginateResponse`` (``Response``, ``Reason``) to a dial outcome."""
    if response.lower() == "success":
        return DialOutcome.ANSWERED
    return _REASONS.get(reason, DialOutcome.FAILED)


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """The ``OriginateResponse`` of one `AmiClient.originate`."""

    outcome: DialOutcome
    call_uuid: str
    """Canonical lower-case UUID, as the AudioSocket server will report it."""
    reason: int
    """Asterisk's raw Reason code."""
    uniqueid: str = ""
    """Asterisk's Uniqueid of the originated channel (``<null>`` when none was made)."""
    channel: str = ""


def canonical_uuid(call_uuid: str) -> str:
    """``call_uuid`` as lower-case 8-4-4-4-12 text; `ValueError` if it is not a UUID."""
    return str(uuid.UUID(call_uuid))


def transfer_variable(call_uuid: str) -> str:
    """The global variable the dialplan reads for ``call_uuid``'s transfer target."""
    return XFER_VAR_PREFIX + uuid.UUID(call_uuid).hex


def encode_action(action: str, fields: Sequence[tuple[str, str]]) -> bytes:
    """Frame one action; `ValueError` if any key or value could break the framing."""
    lines = [("Action", action), *fields]
    for key, value in lines:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key):
            raise ValueError(f"bad AMI header name {key!r}")
        if _UNSAFE.search(value):
            raise ValueError(f"AMI header {key} holds a control character (CR/LF injection?)")
    return "".join(f"{k}: {v}\r\n" for k, v in lines).encode() + b"\r\n"


def parse_message(lines: Sequence[bytes]) -> AmiMessage:
    """Parse the lines of one message (without the blank line that ends it)."""
    fields = []
    for raw in lines:
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        key, sep, value = text.partition(":")
        fields.append((key.strip(), value.strip()) if sep else ("", text))
    return AmiMessage(tuple(fields))


async def read_message(reader: asyncio.StreamReader) -> AmiMessage | None:
    """The next message, or ``None`` at EOF; `AmiProtocolError` on an oversized one."""
    lines: list[bytes] = []
    while True:
        try:
            line = await reader.readline()
        except ValueError as exc:  # asyncio's LimitOverrunError: a line over the limit
            raise AmiProtocolError(f"AMI line over {_MAX_LINE_BYTES} bytes") from exc
        if not line:
            return None
        if line.strip(b"\r\n"):
            lines.append(line)
            if len(lines) > _MAX_LINES:
                raise AmiProtocolError(f"AMI message over {_MAX_LINES} lines")
        elif lines:
            return parse_message(lines)


@dataclass
class EventSubscription:
    """Events for one consumer, oldest dropped (and counted) past ``maxsize``."""

    names: frozenset[str] | None
    """Event names (lower case) to keep; ``None`` keeps all."""
    maxsize: int = 256
    dropped: int = 0
    _queue: deque[AmiMessage] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, message: AmiMessage) -> None:
        """Queue ``message`` if it is wanted."""
        if self.names is not None and (message.get("Event") or "").lower() not in self.names:
            return
        if len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self._ready.set()

    async def get(self, timeout_s: float) -> AmiMessage:
        """The oldest queued event; `TimeoutError` after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
        return self._queue.popleft()


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class AmiClient:
    """One AMI session with login, keepalive and reconnection; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        timeout_s: float = 5.0,
        *,
        keepalive_s: float = 20.0,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        max_pending: int = 256,
        originate_grace_s: float = 15.0,
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self.timeout_s = timeout_s
        """Bound on connecting, logging in, and each action's round trip."""
        self.keepalive_s = keepalive_s
        self.backoff_s = backoff_s
        """First and longest pause between reconnection attempts (doubling)."""
        self.max_pending = max_pending
        self.originate_grace_s = originate_grace_s
        """Beyond the ring timeout, how long to wait for ``OriginateResponse``."""
        self.reconnects = 0
        """Successful reconnections after a drop."""
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(4)
        self._pending: dict[str, tuple[str, asyncio.Future[AmiMessage]]] = {}
        self._originating: dict[str, asyncio.Future[AmiMessage]] = {}
        self._subscriptions: list[EventSubscription] = []
        self._conn: _Connection | None = None
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"AmiClient({self.username}@{self.host}:{self.port})"  # never the secret

    @property
    def connected(self) -> bool:
        """Logged in and ready for actions."""
        return self._connected.is_set()

    async def start(self) -> None:
        """Connect and log in once (errors raise), then keep the session up in the background."""
        await self._connect()
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def close(self) -> None:
        """Log off (bounded), stop reconnecting and close the connection."""
        self._closing = True
        conn = self._conn
        if conn is not None and self.connected:
            with contextlib.suppress(AmiError, TimeoutError, OSError):
                async with asyncio.timeout(min(self.timeout_s, 2.0)):
                    await self._roundtrip(conn, "Logoff", [])
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        if self._conn is not None:
            await self._drop(self._conn, "client closed")

    async def __aenter__(self) -> AmiClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def subscribe(
        self, names: Sequence[str] | None = None, maxsize: int = 256
    ) -> EventSubscription:
        """Receive events (``names`` or all); call `unsubscribe` when done."""
        names_lc = None if names is None else frozenset(n.lower() for n in names)
        sub = EventSubscription(names_lc, maxsize)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: EventSubscription) -> None:
        """Stop delivering events to ``sub``."""
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(sub)

    async def action(self, name: str, fields: Sequence[tuple[str, str]] = ()) -> AmiMessage:
        """Send one action and return its ``Success`` response; `AmiActionError` on ``Error``.

        Waits (within ``timeout_s``) for a connection if one is being re-established.
        """
        encode_action(name, fields)  # reject injection before waiting for anything
        async with asyncio.timeout(self.timeout_s):
            await self._connected.wait()
            assert self._conn is not None
            return await self._roundtrip(self._conn, name, fields)

    async def ping(self) -> None:
        """One ``Ping`` round trip."""
        await self.action("Ping")

    async def hangup(self, channel: str, cause: int = 16) -> None:
        """Hang up ``channel`` (its exact name) with a Q.850 cause (16: normal clearing)."""
        await self.action("Hangup", [("Channel", channel), ("Cause", str(cause))])

    async def set_transfer_target(self, call_uuid: str, target: str) -> None:
        """Publish ``target`` for ``[voiceagent-after]``: a global ``VOICEAGENT_XFER_<hex>``.

        ``target`` must already be what the dialplan keeps (``[a-z0-9_]``): it filters out any
        other character, so ``Agents`` would silently become ``gents``.
        """
        if not _TARGET.fullmatch(target):
            raise ValueError(f"transfer target {target!r} is not [a-z0-9_]{{1,64}}")
        name = transfer_variable(call_uuid)
        await self.action("Setvar", [("Variable", name), ("Value", target)])
        log.info("call %s: transfer target %s published", canonical_uuid(call_uuid), target)

    async def caller_id(self, call_uuid: str) -> str:
        """The caller's number ``[from-carrier]`` published for an inbound AudioSocket call.

        AudioSocket itself carries no caller ID, so the dialplan sets the global
        ``VOICEAGENT_CID_<hex>`` before ``AudioSocket()``. Returns "" when none was published.
        """
        name = CID_VAR_PREFIX + uuid.UUID(call_uuid).hex
        reply = await self.action("Getvar", [("Variable", name)])
        value = reply.get("Value") or ""
        return value if _CALLER.fullmatch(value) else ""

    async def originate(
        self,
        number: str,
        *,
        call_uuid: str,
        campaign: str | int,
        attempt_id: str | int,
        caller_id: str,
        ring_timeout_s: float = 30.0,
    ) -> OriginateResult:
        """Place an outbound call through ``Local/<digits>@voiceagent-dial`` and await its fate.

        The answered call reaches the agent as an AudioSocket connection whose UUID is
        ``result.call_uuid``. `AmiDisconnectedError` before the ``Success`` acknowledgement means
        Asterisk may or may not have queued the call; after it, the wait for
        ``OriginateResponse`` survives a reconnection (AMI events are broadcast), and a
        `TimeoutError` means its outcome is unknown: match it by ``call_uuid``, do not redial.
        """
        fields = originate_fields(
            number,
            call_uuid=call_uuid,
            campaign=campaign,
            attempt_id=attempt_id,
            caller_id=caller_id,
            ring_timeout_s=ring_timeout_s,
        )
        encode_action("Originate", fields)
        if len(self._originating) >= self.max_pending:
            raise AmiError(f"{len(self._originating)} originates already in flight")
        action_id = self._next_id()
        waiter: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._originating[action_id] = waiter
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._connected.wait()
                assert self._conn is not None
                await self._roundtrip(self._conn, "Originate", fields, action_id)
            async with asyncio.timeout(ring_timeout_s + self.originate_grace_s):
                event = await waiter
        finally:
            self._originating.pop(action_id, None)
        reason_text = event.get("Reason") or ""
        reason = int(reason_text) if reason_text.isdigit() else 0
        outcome = dial_outcome_for(event.get("Response") or "", reason)
        result = OriginateResult(
            outcome,
            canonical_uuid(call_uuid),
            reason,
            event.get("Uniqueid") or "",
            event.get("Channel") or "",
        )
        log.info("call %s: originate %s (Reason %d)", result.call_uuid, outcome.value, reason)
        return result

    # --- connection ---------------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"va-{self._id_prefix}-{next(self._ids)}"

    async def _connect(self) -> None:
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, limit=_MAX_LINE_BYTES
                )
        except (OSError, TimeoutError) as exc:
            raise AmiConnectionError(f"cannot connect to AMI at {where}: {exc!r}") from exc
        conn = _Connection(reader, writer)
        try:
            async with asyncio.timeout(self.timeout_s):
                banner = (await reader.readline()).decode("utf-8", "replace").strip()
            if not banner.startswith(BANNER_PREFIX):
                raise AmiConnectionError(f"{where} is not an Asterisk manager: {banner[:80]!r}")
            self._conn = conn
            conn.tasks.append(asyncio.create_task(self._read_loop(conn), name="ami-reader"))
            login = [("Username", self.username), ("Secret", self._secret), ("Events", "call")]
            async with asyncio.timeout(self.timeout_s):
                await self._roundtrip(conn, "Login", login)
        except AmiActionError as exc:
            await self._drop(conn, "login refused")
            raise AmiAuthError(
                f"AMI login as {self.username!r} at {where} refused: {exc.message}"
            ) from None
        except (AmiError, OSError, TimeoutError) as exc:
            await self._drop(conn, "login failed")
            if isinstance(exc, AmiError):
                raise
            raise AmiConnectionError(f"AMI login at {where} failed: {exc!r}") from exc
        conn.tasks.append(asyncio.create_task(self._keepalive(conn), name="ami-keepalive"))
        self._connected.set()
        log.info("AMI logged in as %s at %s", self.username, where)

    async def _supervise(self) -> None:
        delay = self.backoff_s[0]
        while not self._closing:
            conn = self._conn
            if conn is not None and conn.tasks:
                await asyncio.gather(conn.tasks[0], return_exceptions=True)  # the reader
                await self._drop(conn, "connection lost")
            if self._closing:
                return
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except AmiError as exc:
                log.warning("AMI reconnect failed (next try in %.1f s): %s", delay, exc)
                delay = min(delay * 2, self.backoff_s[1])
                self._conn = None
                continue
            self.reconnects += 1
            delay = self.backoff_s[0]

    async def _drop(self, conn: _Connection, why: str) -> None:
        if self._conn is conn:
            self._connected.clear()
        for action_id, (name, fut) in list(self._pending.items()):
            if not fut.done():
                fut.set_exception(
                    AmiDisconnectedError(
                        f"AMI connection to {self.host}:{self.port} lost ({why}) while {name} "
                        f"(ActionID {action_id}) waited for its response"
                    )
                )
        self._pending.clear()
        conn.writer.close()
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in conn.tasks if t is not current), return_exceptions=True)
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await conn.writer.wait_closed()

    async def _roundtrip(
        self,
        conn: _Connection,
        name: str,
        fields: Sequence[tuple[str, str]],
        action_id: str | None = None,
    ) -> AmiMessage:
        action_id = action_id or self._next_id()
        data = encode_action(name, [("ActionID", action_id), *fields])
        if len(self._pending) >= self.max_pending:
            raise AmiError(f"{len(self._pending)} AMI actions already in flight")
        if conn.writer.is_closing():
            raise AmiDisconnectedError(f"AMI connection to {self.host}:{self.port} is closed")
        fut: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = (name, fut)
        try:
            conn.writer.write(data)
            await conn.writer.drain()
            response = await fut
        except ConnectionError as exc:
            raise AmiDisconnectedError(f"AMI write of {name} failed: {exc!r}") from exc
        finally:
            self._pending.pop(action_id, None)
        if (response.get("Response") or "").lower() == "error":
            raise AmiActionError(name, response.get("Message") or "(no message)")
        return response

    async def _read_loop(self, conn: _Connection) -> None:
        try:
            while True:
                message = await read_message(conn.reader)
                if message is None:
                    if not self._closing:
                        log.warning(
                            "AMI connection to %s:%d closed by Asterisk", self.host, self.port
                        )
                    return
                self._dispatch(message)
        except (AmiProtocolError, ConnectionError) as exc:
            log.warning("AMI connection to %s:%d broken: %s", self.host, self.port, exc)

    def _dispatch(self, message: AmiMessage) -> None:
        action_id = message.get("ActionID") or ""
        event = message.get("Event")
        if event is not None:  # before Response: OriginateResponse carries both
            if event.lower() == "originateresponse":
                waiter = self._originating.get(action_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
            for sub in self._subscriptions:
                sub.offer(message)
        elif message.get("Response") is not None:
            pending = self._pending.get(action_id)
            if pending is not None and not pending[1].done():
                pending[1].set_result(message)
            else:
                log.debug("AMI response for unknown ActionID %r", action_id)

    async def _keepalive(self, conn: _Connection) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._roundtrip(conn, "Ping", [])
            except (AmiError, TimeoutError) as exc:
                log.warning("AMI keepalive failed (%r); reconnecting", exc)
                conn.writer.close()  # the reader sees EOF and the supervisor reconnects
                return


def originate_fields(
    number: str,
    *,
    call_uuid: str,
    campaign: str | int,
    attempt_id: str | int,
    caller_id: str,
    ring_timeout_s: float,
) -> list[tuple[str, str]]:
    """The headers of the ``Originate`` action for asterisk/extensions.conf; `ValueError` if unsafe.

    The number must be E.164 or digits; the leading ``+`` is dropped because the dial context
    matches ``_X.`` (digits). Variable values go through Asterisk's comma-separated parser, so
    they are restricted to ``[A-Za-z0-9_.:@+-]``.
    """
    if not _NUMBER.fullmatch(number):
        raise ValueError("number must be E.164 (+ and 2-20 digits) or digits only")
    values = {"campaign": str(campaign), "attempt_id": str(attempt_id)}
    for what, value in values.items():
        if not _VAR_VALUE.fullmatch(value):
            raise ValueError(f"{what} {value!r} is not [A-Za-z0-9_.:@+-]{{1,128}}")
    if _UNSAFE.search(caller_id) or len(caller_id) > 80:
        raise ValueError("caller_id holds a control character or is over 80 characters")
    if not 1 <= ring_timeout_s <= 300:
        raise ValueError("ring_timeout_s must be within 1..300 s")
    return [
        ("Channel", f"Local/{number.lstrip('+')}@{DIAL_CONTEXT}"),
        ("Context", AGENT_CONTEXT),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Variable", f"CALL_UUID={canonical_uuid(call_uuid)}"),
        ("Variable", f"CAMPAIGN={values['campaign']}"),
        ("Variable", f"ATTEMPT_ID={values['attempt_id']}"),
        ("CallerID", caller_id),
        ("Timeout", str(round(ring_timeout_s * 1000))),
        ("Async", "true"),
    ]


def transfer_hook(client: AmiClient) -> TransferHook:
    """The AudioSocket server's ``on_transfer(call_uuid, target)``, publishing via ``client``."""

    async def on_transfer(call_uuid: str, target: str) -> None:
        await client.set_transfer_target(call_uuid, target)

    return on_transfer
