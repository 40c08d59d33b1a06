"""Webhooks reach a local HTTP server, signed, and are retried after a 500."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.crm.conftest import make_account
from voiceagent.api.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookDispatcher, verify
from voiceagent.crm.models import Call, CallEvent

SECRET = "whsec-test"


class Receiver(ThreadingHTTPServer):
    """Answers the first ``fail_first`` requests with 500, then 204; keeps every request."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        failing = len(self.server.received) <= self.server.fail_first
        self.send_response(500 if failing else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(fail_first=1)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


def _event(s: Session, call_id: str, kind: str, data: dict[str, Any]) -> None:
    s.add(CallEvent(call_id=call_id, kind=kind, data=data, at=datetime.now(UTC)))


async def test_delivered_signed_and_retried(
    receiver: Receiver, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions.begin() as s:
        account, phone = make_account(s)
        s.add(Call(id="c-1", account_id=account.id, dialplan_id="p", dialplan_version="1"))
        s.flush()
        _event(s, "c-1", "record_flag", {"flag": "refusal"})  # before the dispatcher existed
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    dispatcher = WebhookDispatcher(
        sessions, url, SECRET, tmp_path / "cursor.json", backoff_s=0.01, timeout_s=5
    )
    assert await dispatcher.run_once() == 0  # first start: history is not replayed
    with sessions.begin() as s:
        _event(s, "c-1", "record_promise", {"amount": "100.00", "currency": "COP"})
        _event(s, "c-1", "record_flag", {"flag": "refusal"})  # no webhook for this flag
        _event(s, "c-1", "transfer", {"target": "maria"})
        _event(s, "c-1", "record_flag", {"flag": "stop_contact"})
    assert await dispatcher.run_once() == 3
    assert receiver.received[0][1] == receiver.received[1][1]  # the 500 was retried
    bodies = [(h, b) for h, b in receiver.received[1:]]
    types = [h["X-Voiceagent-Event"] for h, _ in bodies]
    assert types == ["promise", "transfer", "stop_contact"]
    for headers, body in bodies:
        assert verify(
            SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], time.time()
        )
        assert not verify(
            "other", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], time.time()
        )
        assert not verify(
            SECRET, headers[TIMESTAMP_HEADER], body + b" ", headers[SIGNATURE_HEADER], time.time()
        )
    assert b'"account_id": %d' % account.id in bodies[0][1]
    assert await dispatcher.run_once() == 0  # the cursor moved: nothing is sent twice
    restarted = WebhookDispatcher(sessions, url, SECRET, tmp_path / "cursor.json")
    assert await restarted.run_once() == 0
    assert len(receiver.received) == 4
