"""Slips reach a real SMTP server (aiosmtpd) and a local SMS webhook; nothing lost, nothing doubled.

Every test runs on SQLite and on a real PostgreSQL (the CRM fixtures).
"""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session, sessionmaker

from tests.crm.conftest import make_account
from tests.slips.test_render import pdf_text
from voiceagent.crm.models import CallEvent, ContactRestriction
from voiceagent.crm.sink import DbCallSink
from voiceagent.dialog import actions as act
from voiceagent.slips import outbox
from voiceagent.slips.deliver import SIGNATURE_HEADER, TIMESTAMP_HEADER, SlipConfig, SlipDispatcher
from voiceagent.slips.deliver import sign as slip_sign

SECRET = "sms-secret"
DUE = date(2026, 11, 20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=default_policy))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def smtp_server(port: int) -> tuple[Controller, Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    return controller, mailbox


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    port = free_port()
    controller, mailbox = smtp_server(port)
    yield port, mailbox
    controller.stop()


class SmsGateway(ThreadingHTTPServer):
    """Answers the first ``fail_first`` POSTs with 500, then 200; keeps every request."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _SmsHandler)


class _SmsHandler(BaseHTTPRequestHandler):
    server: SmsGateway

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        self.send_response(500 if len(self.server.received) <= self.server.fail_first else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    server = SmsGateway(fail_first=1)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


def config(tmp_path: Path, smtp_port: int = 1, sms_url: str = "") -> SlipConfig:
    return SlipConfig(
        state_file=tmp_path / "slips" / "outbox.json",
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_from="Cobranzas <cobranzas@andino.example>",
        smtp_security="none",
        sms_webhook_url=sms_url,
        sms_webhook_secret=SECRET,
    )


def dispatcher(sessions: sessionmaker[Session], cfg: SlipConfig, **kw: Any) -> SlipDispatcher:
    kw.setdefault("backoff_s", 0.05)
    kw.setdefault("settle_s", 0.0)
    kw.setdefault("timeout_s", 5.0)
    return SlipDispatcher(sessions, cfg, **kw)


def call_with_slip(
    sessions: sessionmaker[Session],
    channel: str,
    *,
    email_to: str | None = "maria@example.com",
    n: int = 1,
    phone_type: str = "mobile",
) -> tuple[int, int]:
    """A call that commits a promise then asks for a slip, through the real sink; (account, event).

    ``n`` picks a distinct account (reference ``A-<n>``, its own document and phone).
    """
    with sessions.begin() as s:
        account, phone = make_account(s, f"A-{n}", f"+57300123456{n}", f"10203040{n}")
        account.email = email_to
        phone.type = phone_type
        account_id = account.id
    sink = DbCallSink(sessions, worker="test:1")
    call_id = sink.open_call(
        dialplan_id="es-419/early", dialplan_version="1", account_id=account_id
    )
    sink.commit(call_id, act.RecordPromise(Decimal("150000.00"), "COP", DUE, "full"))
    sink.commit(call_id, act.SendSlip(channel))
    with sessions() as s:
        event = s.query(CallEvent).filter_by(call_id=call_id, kind="send_slip").one()
        return account_id, event.id


def statuses(cfg: SlipConfig) -> dict[int, outbox.Delivery]:
    return outbox.OutboxFile(cfg.state_file).load().deliveries


async def test_email_reaches_smtp_with_the_pdf_attached(
    smtp: tuple[int, Mailbox], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    port, mailbox = smtp
    with sessions.begin() as s:  # history older than the first start's backfill: not replayed
        old_account, _ = make_account(s, ref="OLD", e164="+573009999999", document="99")
    sink = DbCallSink(sessions)
    old_call = sink.open_call(dialplan_id="p", dialplan_version="1", account_id=old_account.id)
    with sessions.begin() as s:
        s.add(
            CallEvent(
                call_id=old_call,
                kind="send_slip",
                data={"channel": "email"},
                at=datetime.now(UTC) - timedelta(days=3),
            )
        )
    _, event_id = call_with_slip(sessions, "email")
    cfg = config(tmp_path, port)
    first = dispatcher(sessions, cfg)
    summary = await first.run_once()
    assert (summary.registered, summary.sent, summary.outstanding) == (1, 1, 0)
    assert len(mailbox.messages) == 1
    msg = mailbox.messages[0]
    assert mailbox.envelopes[0] == ("cobranzas@andino.example", ["maria@example.com"])
    assert msg["Subject"] == "Cupón de pago Banco Andino - A-1"
    assert msg["Message-ID"] == f"<slip-{event_id}@andino.example>"
    body = msg.get_body(("plain",))
    assert body is not None
    assert "Valor a pagar: $150.000,00" in body.get_content()
    assert "Fecha límite de pago: 20 de noviembre de 2026" in body.get_content()
    html = msg.get_body(("html",))
    assert html is not None and "$150.000,00" in html.get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "slip-A-1.pdf"
    pdf = attachment.get_content()
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert "$150.000,00" in text and "20 de noviembre de 2026" in text and "A-1" in text
    delivery = statuses(cfg)[event_id]
    assert (delivery.status, delivery.attempts, delivery.to) == ("sent", 1, "m***@example.com")
    assert (await first.run_once()).sent == 0
    first.close()
    restarted = dispatcher(sessions, cfg)  # a restart sends nothing again
    assert (await restarted.run_once()).sent == 0
    restarted.close()
    assert len(mailbox.messages) == 1


async def test_sms_webhook_is_retried_after_a_500_and_delivered_once(
    gateway: SmsGateway, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    _, event_id = call_with_slip(sessions, "sms")
    url = f"http://127.0.0.1:{gateway.server_address[1]}/sms"
    cfg = config(tmp_path, sms_url=url)
    first = dispatcher(sessions, cfg)
    summary = await first.drain(max_wait_s=10)
    first.close()
    assert (summary.sent, summary.retrying, summary.outstanding) == (1, 1, 0)
    assert len(gateway.received) == 2
    assert gateway.received[0][1] == gateway.received[1][1]
    headers, body = gateway.received[1]
    doc = json.loads(body)
    assert doc["to"] == "+573001234561"
    assert doc["id"] == f"slip_{event_id}" == headers["Idempotency-Key"]
    assert doc["text"].startswith("Banco Andino: pague $150.000,00 antes del 20/11/26. Ref. A-1.")
    assert headers[SIGNATURE_HEADER] == slip_sign(SECRET, int(headers[TIMESTAMP_HEADER]), body)
    delivery = statuses(cfg)[event_id]
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    restarted = dispatcher(sessions, cfg)
    assert (await restarted.drain(max_wait_s=1)).sent == 0
    restarted.close()
    assert len(gateway.received) == 2


async def test_smtp_down_keeps_the_slip_until_it_is_back(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    _, event_id = call_with_slip(sessions, "email")
    port = free_port()  # nothing listens here yet
    cfg = config(tmp_path, port)
    down = dispatcher(sessions, cfg, max_attempts=2, backoff_s=0.01)
    summary = await down.run_once()
    assert (summary.sent, summary.retrying, summary.outstanding) == (0, 1, 1)
    delivery = statuses(cfg)[event_id]
    assert delivery.status == "retrying" and "Connection refused" in (delivery.reason or "")
    await asyncio.sleep(0.02)
    assert (await down.run_once()).failed == 1  # max_attempts reached: failed, with the reason
    down.close()
    delivery = statuses(cfg)[event_id]
    assert delivery.status == "failed" and delivery.reason
    assert delivery.reason.startswith("gave up after 2 attempts")
    assert outbox.requeue(cfg.state_file, None, datetime.now(UTC)) == [event_id]
    controller, mailbox = smtp_server(port)
    try:
        back = dispatcher(sessions, cfg)
        assert (await back.run_once()).sent == 1
        back.close()
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1
    assert statuses(cfg)[event_id].status == "sent"


class Crash(BaseException):
    """The process dying right after the SMTP server accepted the message."""


async def test_crash_between_send_and_record_sends_at_most_one_duplicate(
    smtp: tuple[int, Mailbox],
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, mailbox = smtp
    _, event_id = call_with_slip(sessions, "email")
    cfg = config(tmp_path, port)
    crashing = dispatcher(sessions, cfg)
    real_save = outbox.OutboxFile.save

    def save(self: outbox.OutboxFile, state: outbox.OutboxState) -> None:
        if any(d.status == "sent" for d in state.deliveries.values()):
            raise Crash
        real_save(self, state)

    monkeypatch.setattr(outbox.OutboxFile, "save", save)
    with pytest.raises(Crash):
        await crashing.run_once()
    monkeypatch.setattr(outbox.OutboxFile, "save", real_save)
    crashing.close()  # the OS releases a dead process's flock the same way
    assert len(mailbox.messages) == 1
    assert statuses(cfg)[event_id].status == "sending"
    restarted = dispatcher(sessions, cfg)
    assert (await restarted.run_once()).sent == 1  # not lost: sent again, once
    restarted.close()
    again = dispatcher(sessions, cfg)
    assert (await again.run_once()).sent == 0
    again.close()
    assert len(mailbox.messages) == 2
    assert mailbox.messages[0]["Message-ID"] == mailbox.messages[1]["Message-ID"]
    delivery = statuses(cfg)[event_id]
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert "interrupted" in (delivery.reason or "")


async def test_undeliverable_slips_fail_with_a_reason(
    smtp: tuple[int, Mailbox], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    port, mailbox = smtp
    _, no_email = call_with_slip(sessions, "email", email_to=None, n=1)
    _, landline = call_with_slip(sessions, "sms", phone_type="fixed", n=2)
    account_id, stopped = call_with_slip(sessions, "email", n=3)
    with sessions.begin() as s:
        s.add(ContactRestriction(account_id=account_id, kind="stop_contact", scope="account"))
    cfg = config(tmp_path, port, sms_url="http://127.0.0.1:1/never")
    d = dispatcher(sessions, cfg)
    summary = await d.run_once()
    d.close()
    assert (summary.sent, summary.failed) == (0, 3)
    found = statuses(cfg)
    assert found[no_email].reason == "the account has no valid e-mail address"
    assert found[landline].reason == "the account has no mobile phone to text"
    assert found[stopped].reason == "the account has an active stop_contact restriction"
    assert mailbox.messages == []


async def test_one_dispatcher_per_state_file(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    cfg = config(tmp_path)
    first = dispatcher(sessions, cfg)
    await first.run_once()
    second = dispatcher(sessions, cfg)
    with pytest.raises(outbox.DispatcherBusy):
        await second.run_once()
    with pytest.raises(outbox.DispatcherBusy):
        outbox.requeue(cfg.state_file, None, datetime.now(UTC))
    first.close()
    second.close()


async def test_cursor_waits_for_young_events_but_registers_them(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    _, event_id = call_with_slip(sessions, "whatsapp")  # no whatsapp webhook: fails at once
    cfg = config(tmp_path)
    d = dispatcher(sessions, cfg, settle_s=3600)
    assert (await d.run_once()).failed == 1
    state = outbox.OutboxFile(cfg.state_file).load()
    assert state.cursor < event_id  # may still be passed by an earlier, uncommitted event
    assert state.deliveries[event_id].reason == "no whatsapp webhook is configured"
    assert (await d.run_once()).registered == 0  # seen again, never registered twice
    d.close()
