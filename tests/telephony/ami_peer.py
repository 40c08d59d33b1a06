"""A fake Asterisk Manager (AMI) on 127.0.0.1 that behaves like main/manager.c.

What it reproduces, per Asterisk's AMI documentation and manager.c:
- the banner ``Asterisk Call Manager/<version>\\r\\n`` (one line, no blank line after it);
- messages of ``Key: Value\\r\\n`` lines ending with ``\\r\\n``; header names are
  case-insensitive; every response echoes the action's ``ActionID`` right after ``Response:``;
- before login only ``Login``/``Logoff``/``Challenge`` are allowed (others: ``Permission denied``);
  a bad secret waits (1 s in Asterisk), answers ``Message: Authentication failed`` and closes;
- ``Events:`` at login sets the event mask (``on``, ``off`` or classes such as ``call``);
  events reach a session only if its mask includes their class;
- ``Setvar`` without ``Channel`` sets a global (``Message: Variable Set``); with an unknown
  channel: ``No such channel``;
- ``Originate`` with ``Async: true``: ``Message: Originate successfully queued``, later an
  ``Event: OriginateResponse`` with the same ActionID, ``Response: Success|Failure``, ``Reason``
  and ``Uniqueid`` (``<null>`` when no channel was made), broadcast to every session;
- ``Ping`` -> ``Ping: Pong`` and a ``Timestamp``; ``Logoff`` -> ``Response: Goodbye``, then close;
- unknown actions -> ``Invalid/unknown command``.

Tests script outcomes (`OriginateScript`), add chatter events around responses, and drop the
connection when a given action arrives. Every action is recorded with its raw bytes and time.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

BANNER = b"Asterisk Call Manager/9.0.0\r\n"
AUTH_FAIL_DELAY_S = 0.05
"""Asterisk sleeps 1 s before refusing a login; shortened so tests stay fast."""


@dataclass(frozen=True)
class ReceivedAction:
    """One action as it arrived: raw bytes, parsed headers, arrival ``time.monotonic()``."""

    t: float
    raw: bytes
    headers: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == key.lower()), None)

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == key.lower()]

    @property
    def action(self) -> str:
        return (self.get("Action") or "").lower()


@dataclass(frozen=True)
class OriginateScript:
    """How an originated call ends: ``Response`` and ``Reason`` after ``delay_s``."""

    response: str = "Success"
    reason: int = 4
    delay_s: float = 0.05


@dataclass
class _Session:
    writer: asyncio.StreamWriter
    authenticated: bool = False
    events_mask: str = "on"


@dataclass
class FakeManager:
    """An AMI server: ``async with FakeManager() as ami:`` then connect to ``ami.port``."""

    username: str = "voiceagent"
    secret: str = "s3cret"
    channels: set[str] = field(default_factory=set)
    originate: Callable[[ReceivedAction], OriginateScript] = lambda _a: OriginateScript()
    chatter: bool = False
    """Send unrelated events (and a foreign OriginateResponse) before each response."""
    drop_on: str | None = None
    """Close the connection, without answering, the next time this action arrives."""
    received: list[ReceivedAction] = field(default_factory=list)
    globals: dict[str, str] = field(default_factory=dict)
    globals_set_at: dict[str, float] = field(default_factory=dict)
    logins: int = 0
    connections: int = 0

    def __post_init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._sessions: list[_Session] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        self._uniqueids = iter(range(1_700_000_000, 1_800_000_000))

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> FakeManager:
        self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for session in self._sessions:
            session.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), 5)

    def actions(self, name: str) -> list[ReceivedAction]:
        return [a for a in self.received if a.action == name.lower()]

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5) -> None:
        """Until ``predicate()`` holds, re-checked after every action and connection."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)

    def disconnect_all(self) -> None:
        """Drop every connection at once (Asterisk restarting, a network cut)."""
        for session in self._sessions:
            session.writer.close()

    def after_audiosocket(self, call_uuid: str) -> str:
        """``[voiceagent-after]`` of asterisk/extensions.conf: read, clear and filter the target."""
        xfer_var = "VOICEAGENT_XFER_" + "".join(c for c in call_uuid if c in "0123456789abcdef")
        value = self.globals.pop(xfer_var, "")
        return "".join(c for c in value if c in "abcdefghijklmnopqrstuvwxyz0123456789_")

    def send_event(self, name: str, fields: list[tuple[str, str]], klass: str = "call") -> None:
        """Broadcast an event to every logged-in session whose mask takes ``klass``."""
        data = _frame([("Event", name), ("Privilege", f"{klass},all"), *fields])
        for session in self._sessions:
            mask = session.events_mask.lower()
            wanted = mask == "on" or klass in re.split(r"\s*,\s*", mask)
            if session.authenticated and wanted and not session.writer.is_closing():
                session.writer.write(data)

    # --- one connection -----------------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = _Session(writer)
        self._sessions.append(session)
        self.connections += 1
        await self._notify()
        writer.write(BANNER)
        try:
            while not writer.is_closing():
                lines = await _read_lines(reader)
                if lines is None:
                    break
                action = ReceivedAction(time.monotonic(), b"".join(lines) + b"\r\n", _parse(lines))
                self.received.append(action)
                await self._notify()
                if self.drop_on is not None and action.action == self.drop_on.lower():
                    self.drop_on = None
                    break
                if not await self._handle(session, action):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._sessions.remove(session)
            self._tasks.discard(task)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, session: _Session, a: ReceivedAction) -> bool:
        """Answer one action; ``False`` closes the connection."""
        reply = _Reply(session.writer, a.get("ActionID"))
        if self.chatter and session.authenticated:
            self.send_event("Newchannel", [("Channel", "PJSIP/carrier-00000001"), ("State", "4")])
            self.send_event("OriginateResponse", [("ActionID", "someone-else-1"),
                            ("Response", "Success"), ("Reason", "4")])  # fmt: skip
        if a.action not in ("login", "logoff", "challenge") and not session.authenticated:
            reply.error("Permission denied")
        elif a.action == "login":
            if a.get("Username") != self.username or a.get("Secret") != self.secret:
                await asyncio.sleep(AUTH_FAIL_DELAY_S)
                reply.error("Authentication failed")
                return False
            session.authenticated = True
            session.events_mask = a.get("Events") or "on"
            self.logins += 1
            reply.success("Authentication accepted")
        elif a.action == "logoff":
            reply.send(
                [("Response", "Goodbye"), *reply.id, ("Message", "Thanks for all the fish.")]
            )
            return False
        elif a.action == "ping":
            reply.send([("Response", "Success"), *reply.id, ("Ping", "Pong"),
                        ("Timestamp", f"{time.time():.6f}")])  # fmt: skip
        elif a.action == "setvar":
            self._setvar(a, reply)
        elif a.action == "getvar":
            name, channel = a.get("Variable"), a.get("Channel")
            if not name:
                reply.error("No variable specified")
            elif channel and channel not in self.channels:
                reply.error("No such channel")
            else:  # Asterisk answers an unset global with an empty Value
                reply.send([("Response", "Success"), *reply.id, ("Variable", name),
                            ("Value", self.globals.get(name, ""))])  # fmt: skip
        elif a.action == "originate":
            self._originate(a, reply)
        elif a.action == "hangup":
            if a.get("Channel") in self.channels:
                self.channels.discard(a.get("Channel") or "")
                reply.success("Channel Hungup")
            else:
                reply.error("No such channel")
        else:
            reply.error(
                f"Invalid/unknown command: {a.get('Action')}. "
                "Use Action: ListCommands to show available commands."
            )
        return True

    def _setvar(self, a: ReceivedAction, reply: _Reply) -> None:
        name, channel = a.get("Variable"), a.get("Channel")
        if not name:
            reply.error("No variable specified")
        elif channel and channel not in self.channels:
            reply.error("No such channel")
        else:
            if not channel:
                self.globals[name] = a.get("Value") or ""
                self.globals_set_at[name] = time.monotonic()
            reply.success("Variable Set")

    def _originate(self, a: ReceivedAction, reply: _Reply) -> None:
        channel = a.get("Channel") or ""
        if "/" not in channel:
            reply.error("Invalid channel")
            return
        if not (a.get("Priority") or "1").isdigit():
            reply.error("Invalid priority")
            return
        if (a.get("Async") or "").lower() not in ("true", "yes", "1"):
            reply.error("this fake only implements Async: true")
            return
        reply.success("Originate successfully queued")
        script = self.originate(a)
        task = asyncio.create_task(self._originate_response(a, script))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _originate_response(self, a: ReceivedAction, script: OriginateScript) -> None:
        await asyncio.sleep(script.delay_s)
        made = script.response == "Success" or script.reason in (1, 3, 5, 8)
        uniqueid = f"{next(self._uniqueids)}.1" if made else "<null>"
        cid = a.get("CallerID") or ""
        self.send_event(
            "OriginateResponse",
            [
                *([("ActionID", a.get("ActionID") or "")] if a.get("ActionID") else []),
                ("Response", script.response),
                ("Channel", a.get("Channel") or ""),
                ("Context", a.get("Context") or ""),
                ("Exten", a.get("Exten") or ""),
                ("Application", ""),
                ("Data", ""),
                ("Reason", str(script.reason)),
                ("Uniqueid", uniqueid),
                ("CallerIDNum", cid),
                ("CallerIDName", "<unknown>"),
            ],
        )


class _Reply:
    def __init__(self, writer: asyncio.StreamWriter, action_id: str | None) -> None:
        self.writer = writer
        self.id = [("ActionID", action_id)] if action_id is not None else []

    def send(self, fields: list[tuple[str, str]]) -> None:
        if not self.writer.is_closing():
            self.writer.write(_frame(fields))

    def success(self, message: str) -> None:
        self.send([("Response", "Success"), *self.id, ("Message", message)])

    def error(self, message: str) -> None:
        self.send([("Response", "Error"), *self.id, ("Message", message)])


def _frame(fields: list[tuple[str, str]]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in fields) + b"\r\n"


def _parse(lines: list[bytes]) -> tuple[tuple[str, str], ...]:
    out = []
    for line in lines:
        key, _, value = line.decode().rstrip("\r\n").partition(":")
        out.append((key.strip(), value.strip()))
    return tuple(out)


async def _read_lines(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One message's lines (Asterisk ends a message at an empty line), or None at EOF."""
    lines: list[bytes] = []
    while True:
        line = await reader.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            if lines:
                return lines
            continue
        lines.append(line)
