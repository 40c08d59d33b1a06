"""Deliver the payment slips calls asked for: e-mail (SMTP, PDF attached) or SMS (HTTP webhook).

``call_events`` is the outbox: :class:`voiceagent.crm.sink.DbCallSink` journals a
``send_slip`` event (``{"channel": "email" | "sms" | "whatsapp"}``) in its own committed
transaction, after the promise it refers to. :class:`SlipDispatcher` scans those events past a
cursor, records each as a delivery in its state file (:mod:`voiceagent.slips.outbox`), and
tries each due delivery: ``pending -> sending -> sent``, or ``retrying`` (transient error:
SMTP/network down, 4xx SMTP reply, HTTP 5xx/408/429; capped exponential backoff) or
``failed`` (permanent: no address, recipient refused with 5xx, HTTP 4xx, stop-contact, or
``max_attempts`` transient errors).

Guarantee (one dispatcher per state file, enforced by a lock file):

* **Never lost.** An event is written to the state file (fsynced) before the cursor passes it,
  and a delivery leaves the file only once ``sent`` or ``failed`` (after ``keep_s``).
* **Not sent twice after a restart.** ``sent`` is fsynced right after the server accepts;
  a restarted dispatcher never sends a ``sent`` delivery again.
* **At most one duplicate per crash.** A delivery is marked ``sending`` (fsynced) before the
  send. If the process dies after the server accepted but before ``sent`` is written, or a
  reply is lost to a timeout, the restart finds it ``sending`` and sends it once more. Both
  copies carry the same key (e-mail ``Message-ID: <slip-<event>@...>``, webhook
  ``Idempotency-Key: slip_<event>``), so a receiver can drop the second.
* Events become eligible for the cursor ``settle_s`` after their ``at``; a transaction that
  writes an event and stays open longer than that (the sink commits at once) could be missed
  on PostgreSQL, where ids are not committed in order.
* On the first start the dispatcher takes the events of the last ``backfill_s`` (a day), not
  the whole history.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm.models import CallEvent
from voiceagent.crm.types import utcnow
from voiceagent.slips import compose
from voiceagent.slips.outbox import Delivery, DispatcherBusy, OutboxFile, OutboxState, backoff
from voiceagent.slips.render import (
    Slip,
    load_instructions,
    render_html,
    render_pdf,
    render_sms,
    render_text,
    subject,
)

log = logging.getLogger(__name__)
KIND = "send_slip"
SIGNATURE_HEADER = "X-Voiceagent-Signature"
TIMESTAMP_HEADER = "X-Voiceagent-Timestamp"
T = TypeVar("T")
RESENT = "an earlier attempt was interrupted mid-send: possibly a duplicate (same Message-ID)"


class TransientFailure(Exception):
    """Worth trying again later."""


@dataclass(frozen=True, slots=True)
class SlipConfig:
    """Where slips go and how (see :meth:`from_settings` for the settings' names)."""

    state_file: Path
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_security: str = "starttls"
    """``none``, ``starttls`` (required, never silently plain) or ``ssl`` (implicit TLS)."""
    sms_webhook_url: str = ""
    sms_webhook_secret: str = ""
    """HMAC key: requests are signed like :mod:`voiceagent.api.webhooks`; empty: unsigned."""
    whatsapp_webhook_url: str = ""
    instructions_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> SlipConfig:
        """Read ``smtp_*``, ``slip_*`` and ``data_dir`` from the settings object."""

        def get(name: str, default: Any) -> Any:
            value = getattr(settings, name, default)
            return default if value is None else value

        instructions = get("slip_instructions", "")
        return cls(
            state_file=Path(get("data_dir", ".")) / "slips" / "outbox.json",
            smtp_host=get("smtp_host", ""),
            smtp_port=int(get("smtp_port", 587)),
            smtp_user=get("smtp_user", ""),
            smtp_password=get("smtp_password", ""),
            smtp_from=get("smtp_from", ""),
            smtp_security=get("smtp_security", "starttls"),
            sms_webhook_url=get("slip_sms_webhook_url", ""),
            sms_webhook_secret=get("slip_sms_webhook_secret", ""),
            whatsapp_webhook_url=get("slip_whatsapp_webhook_url", ""),
            instructions_file=Path(instructions) if instructions else None,
        )


@dataclass(slots=True)
class Summary:
    """What one pass (or a drain) did."""

    registered: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    next_retry_at: datetime | None = None
    outstanding: int = 0
    """Deliveries not yet ``sent`` or ``failed`` after the pass."""
    events: list[int] = field(default_factory=list)
    """Event ids sent in the pass."""

    def add(self, other: Summary) -> None:
        """Accumulate another pass (its outstanding/next retry replace ours)."""
        self.registered += other.registered
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.events += other.events
        self.outstanding, self.next_retry_at = other.outstanding, other.next_retry_at


def mask_email(address: str) -> str:
    """``maria@example.com`` -> ``m***@example.com``."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(e164: str) -> str:
    """``+573001234567`` -> ``+57******4567``."""
    return e164[:3] + "*" * max(len(e164) - 7, 0) + e164[-4:]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Same scheme as the CRM webhooks: ``sha256=HMAC(secret, "<timestamp>.<body>")``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _smtp_failure(exc: Exception) -> Exception:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        reason = f"recipient refused: {exc.recipients}"
        return compose.PermanentFailure(reason) if min(codes) >= 500 else TransientFailure(reason)
    if isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500:
        return compose.PermanentFailure(f"message refused: {exc.smtp_code} {exc.smtp_error!r}")
    return TransientFailure(f"SMTP: {type(exc).__name__}: {exc}")


class SlipDispatcher:
    """Scans ``send_slip`` events and delivers them (see the module docstring).

    Args:
        sessions: CRM session factory.
        config: Channels, instructions file and state file.
        poll_s: Pause between passes in :meth:`run` when nothing is due sooner.
        backoff_s: First retry delay; doubles per attempt up to ``max_backoff_s``.
        max_attempts: Transient failures before a delivery is ``failed``.
        timeout_s: Per SMTP session / HTTP request.
        backfill_s: On the first start, how far back to take events.
        settle_s: Age an event must reach before the cursor passes it.
        keep_s: How long finished deliveries stay in the state file (``status``).
        clock: UTC clock (tests move it).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: SlipConfig,
        *,
        poll_s: float = 5.0,
        backoff_s: float = 30.0,
        max_backoff_s: float = 3600.0,
        max_attempts: int = 8,
        timeout_s: float = 30.0,
        backfill_s: float = 86400.0,
        settle_s: float = 60.0,
        keep_s: float = 30 * 86400.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.poll_s, self.backoff_s, self.max_backoff_s = poll_s, backoff_s, max_backoff_s
        self.max_attempts, self.timeout_s = max_attempts, timeout_s
        self.backfill_s, self.settle_s, self.keep_s = backfill_s, settle_s, keep_s
        self.clock = clock
        self.instructions = load_instructions(config.instructions_file)
        self.outbox = OutboxFile(config.state_file)
        self._state: OutboxState | None = None
        self._io = ThreadPoolExecutor(1, thread_name_prefix="slips-io")

    async def _run_io(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    def _open(self) -> OutboxState:
        if self._state is None:
            self.outbox.lock()
            first = not self.outbox.exists()
            state = self.outbox.load()
            if first:
                cutoff = self.clock() - timedelta(seconds=self.backfill_s)
                with self.sessions() as s:
                    state.cursor = int(
                        s.scalar(select(func.max(CallEvent.id)).where(CallEvent.at < cutoff)) or 0
                    )
                self.outbox.save(state)
            self._state = state
        return self._state

    def _scan(self) -> int:
        state = self._open()
        cutoff = self.clock() - timedelta(seconds=self.settle_s)
        added = 0
        with self.sessions() as s:
            settled = s.scalar(
                select(func.max(CallEvent.id)).where(
                    CallEvent.id > state.cursor, CallEvent.at <= cutoff
                )
            )
            after = state.cursor
            while True:
                rows = s.execute(
                    select(CallEvent.id, CallEvent.call_id, CallEvent.at, CallEvent.data)
                    .where(CallEvent.id > after, CallEvent.kind == KIND)
                    .order_by(CallEvent.id)
                    .limit(1000)
                ).all()
                for event_id, call_id, at, data in rows:
                    after = event_id
                    if event_id not in state.deliveries:
                        channel = str((data or {}).get("channel", "")).lower()
                        state.deliveries[event_id] = Delivery(
                            event_id,
                            call_id,
                            channel,
                            requested_at=at.isoformat(),
                            updated_at=self.clock().isoformat(),
                        )
                        added += 1
                if len(rows) < 1000:
                    break
        if settled is not None:
            state.cursor = max(state.cursor, int(settled))
        state.prune(self.clock() - timedelta(seconds=self.keep_s))
        self.outbox.save(state)
        return added

    def _save(self) -> None:
        assert self._state is not None
        self.outbox.save(self._state)

    def _prepare(self, delivery: Delivery) -> tuple[str, Slip, str]:
        """Recipient, slip and (masked) recipient for the log, from the CRM."""
        request = compose.Request(
            delivery.event_id,
            delivery.call_id,
            delivery.channel,
            datetime.fromisoformat(delivery.requested_at),
        )
        today = self.clock().date()
        with self.sessions() as s:
            slip, account, call = compose.slip_for(s, request, self.instructions, today)
            if delivery.channel == "email":
                to = compose.email_of(account)
                return to, slip, mask_email(to)
            if delivery.channel in ("sms", "whatsapp"):
                to = compose.mobile_of(s, account, call)
                return to, slip, mask_phone(to)
        raise compose.PermanentFailure(f"unknown channel {delivery.channel!r}")

    def _message(self, delivery: Delivery, slip: Slip, to: str) -> EmailMessage:
        sender = self.config.smtp_from
        msg = EmailMessage()
        msg["Subject"] = subject(slip)
        msg["From"] = sender
        msg["To"] = to
        msg["Date"] = formatdate(usegmt=True)
        domain = sender.rpartition("@")[2].strip(" >") or "voiceagent.invalid"
        msg["Message-ID"] = f"<slip-{delivery.event_id}@{domain}>"
        msg["X-Voiceagent-Slip"] = f"slip_{delivery.event_id}"
        msg.set_content(render_text(slip))
        msg.add_alternative(render_html(slip), subtype="html")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in slip.reference)
        msg.add_attachment(
            render_pdf(slip), maintype="application", subtype="pdf", filename=f"slip-{safe}.pdf"
        )
        return msg

    def _send_email(self, delivery: Delivery, slip: Slip, to: str) -> None:
        cfg = self.config
        if not cfg.smtp_host or not cfg.smtp_from:
            raise compose.PermanentFailure("e-mail is not configured (smtp_host, smtp_from)")
        msg = self._message(delivery, slip, to)
        smtp_cls = smtplib.SMTP_SSL if cfg.smtp_security == "ssl" else smtplib.SMTP
        try:
            with smtp_cls(cfg.smtp_host, cfg.smtp_port, timeout=self.timeout_s) as smtp:
                if cfg.smtp_security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.smtp_user:
                    smtp.login(cfg.smtp_user, cfg.smtp_password)
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise _smtp_failure(exc) from exc

    async def _send_text(
        self, client: httpx.AsyncClient, delivery: Delivery, slip: Slip, to: str
    ) -> None:
        cfg = self.config
        url = cfg.sms_webhook_url if delivery.channel == "sms" else cfg.whatsapp_webhook_url
        if not url:
            raise compose.PermanentFailure(f"no {delivery.channel} webhook is configured")
        key = f"slip_{delivery.event_id}"
        body = json.dumps(
            {"id": key, "channel": delivery.channel, "to": to, "text": render_sms(slip)},
            ensure_ascii=False,
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if cfg.sms_webhook_secret:
            stamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(stamp)
            headers[SIGNATURE_HEADER] = sign(cfg.sms_webhook_secret, stamp, body)
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from exc
        code = response.status_code
        if 200 <= code < 300:
            return
        if code in (408, 425, 429) or code >= 500:
            raise TransientFailure(f"HTTP {code}")
        raise compose.PermanentFailure(f"HTTP {code}: {response.text[:200]}")

    async def _attempt(self, client: httpx.AsyncClient, d: Delivery, summary: Summary) -> None:
        resent = d.status == "sending"
        if resent:
            log.warning("slip evt_%s: was sending when the dispatcher stopped", d.event_id)
        d.status, d.attempts, d.updated_at = "sending", d.attempts + 1, self.clock().isoformat()
        await self._run_io(self._save)
        try:
            to, slip, d.to = await self._run_io(self._prepare, d)
            if d.channel == "email":
                await self._run_io(self._send_email, d, slip, to)
            else:
                await self._send_text(client, d, slip, to)
        except compose.PermanentFailure as exc:
            d.status, d.reason, d.next_at = "failed", str(exc), None
            summary.failed += 1
        except Exception as exc:  # transient, or a database hiccup: try again later
            if not isinstance(exc, TransientFailure):
                log.exception("slip evt_%s", d.event_id)
            reason = str(exc) or type(exc).__name__
            if d.attempts >= self.max_attempts:
                d.status, d.next_at = "failed", None
                d.reason = f"gave up after {d.attempts} attempts: {reason}"
                summary.failed += 1
            else:
                d.status, d.reason = "retrying", reason
                delay = backoff(d.attempts, self.backoff_s, self.max_backoff_s)
                d.next_at = (self.clock() + delay).isoformat()
                summary.retrying += 1
        else:
            d.status, d.next_at = "sent", None
            d.reason = RESENT if resent else None
            d.sent_at = self.clock().isoformat()
            summary.sent += 1
            summary.events.append(d.event_id)
        d.updated_at = self.clock().isoformat()
        await self._run_io(self._save)
        log.info("slip evt_%s by %s to %s: %s %s", d.event_id, d.channel, d.to, d.status, d.reason)

    async def run_once(self) -> Summary:
        """Register new events, then try each due delivery once."""
        summary = Summary(registered=await self._run_io(self._scan))
        assert self._state is not None
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            for event_id in sorted(self._state.deliveries):
                delivery = self._state.deliveries[event_id]
                if delivery.due(self.clock()):
                    await self._attempt(client, delivery, summary)
        waiting = [d for d in self._state.deliveries.values() if d.status not in ("sent", "failed")]
        summary.outstanding = len(waiting)
        retry_times = [datetime.fromisoformat(d.next_at) for d in waiting if d.next_at]
        summary.next_retry_at = min(retry_times, default=None)
        return summary

    async def drain(self, max_wait_s: float = 60.0) -> Summary:
        """Pass until nothing is outstanding or the next retry is beyond ``max_wait_s``."""
        deadline = time.monotonic() + max_wait_s
        total = Summary()
        while True:
            total.add(await self.run_once())
            if not total.outstanding or total.next_retry_at is None:
                return total
            wait_s = max((total.next_retry_at - self.clock()).total_seconds(), 0.0)
            if time.monotonic() + wait_s > deadline:
                return total
            await asyncio.sleep(wait_s)

    async def run(self) -> None:
        """Pass and sleep until cancelled (a failing pass is logged, never fatal)."""
        try:
            while True:
                wait_s = self.poll_s
                try:
                    summary = await self.run_once()
                    if summary.next_retry_at is not None:
                        until = (summary.next_retry_at - self.clock()).total_seconds()
                        wait_s = min(wait_s, max(until, 0.0))
                except DispatcherBusy:
                    raise
                except Exception:  # a database hiccup must not end the dispatcher
                    log.exception("slip dispatcher")
                await asyncio.sleep(wait_s)
        finally:
            self.close()

    def close(self) -> None:
        """Release the state file's lock and the I/O thread."""
        self._io.shutdown(wait=True, cancel_futures=True)
        self.outbox.unlock()
        self._state = None
