"""Webhooks out on promise, transfer and stop-contact, signed with HMAC-SHA256.

``call_events`` is the outbox: the call path writes each event in the same transaction as
the promise or restriction itself, so an event exists exactly when the fact does. This
dispatcher reads events past a cursor, POSTs each one, retries with capped exponential
backoff until the receiver answers 2xx, and only then moves the cursor (kept in a file in
the data dir). Delivery is at least once and in order; receivers dedupe on
``X-Voiceagent-Delivery``. Run one dispatcher per database.

Signature: ``X-Voiceagent-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``
with ``X-Voiceagent-Timestamp`` (Unix seconds); see :func:`verify`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm.models import Call, CallEvent
from voiceagent.metrics import WEBHOOK_DELIVERIES

log = logging.getLogger(__name__)
KINDS = ("record_promise", "transfer", "record_flag")
"""Call-event kinds that may produce a webhook (flags only for stop_contact)."""
SIGNATURE_HEADER = "X-Voiceagent-Signature"
TIMESTAMP_HEADER = "X-Voiceagent-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value of a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: int = 300
) -> bool:
    """Whether a received webhook is authentic and recent (for receivers and tests)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def event_type(kind: str, data: dict[str, Any]) -> str | None:
    """The webhook type of a call event (``promise``, ``transfer``, ``stop_contact``) or None."""
    if kind == "record_promise":
        return "promise"
    if kind == "transfer":
        return "transfer"
    if kind == "record_flag" and data.get("flag") == "stop_contact":
        return "stop_contact"
    return None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One webhook to deliver."""

    event_id: int
    type: str
    body: bytes


class WebhookDispatcher:
    """Delivers webhooks for new call events (see the module docstring).

    Args:
        sessions: CRM session factory.
        url: Receiver URL.
        secret: HMAC key shared with the receiver.
        cursor_file: Where the id of the last delivered event is kept.
        poll_s: Pause between polls when nothing is new.
        backoff_s: First retry delay; doubles up to ``max_backoff_s``.
        timeout_s: Per-request timeout.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        url: str,
        secret: str,
        cursor_file: Path,
        *,
        poll_s: float = 2.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.sessions = sessions
        self.url = url
        self.secret = secret
        self.cursor_file = cursor_file
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self._db_pool = ThreadPoolExecutor(1, thread_name_prefix="webhooks-db")

    def _read_cursor(self) -> int:
        try:
            return int(json.loads(self.cursor_file.read_text())["last_event_id"])
        except FileNotFoundError:
            with self.sessions() as s:  # first start: announce only what happens from now on
                cursor = int(s.scalar(select(func.max(CallEvent.id))) or 0)
            self._write_cursor(cursor)
            return cursor

    def _write_cursor(self, event_id: int) -> None:
        self.cursor_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cursor_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"last_event_id": event_id}))
        tmp.replace(self.cursor_file)

    def _pending(self, limit: int = 100) -> tuple[int, int, list[Outgoing]]:
        """The cursor, the last event id scanned, and the webhooks among the scanned events."""
        cursor = self._read_cursor()
        scanned = cursor
        query = (
            select(CallEvent, Call.account_id)
            .join(Call, Call.id == CallEvent.call_id)
            .where(CallEvent.id > cursor, CallEvent.kind.in_(KINDS))
            .order_by(CallEvent.id)
            .limit(limit)
        )
        out = []
        with self.sessions() as s:
            for event, account_id in s.execute(query):
                scanned = event.id
                kind = event_type(event.kind, event.data or {})
                if kind is None:
                    continue
                payload = {
                    "id": f"evt_{event.id}",
                    "type": kind,
                    "at": event.at.isoformat(),
                    "call_id": event.call_id,
                    "account_id": account_id,
                    "data": event.data,
                }
                out.append(Outgoing(event.id, kind, json.dumps(payload).encode()))
        return cursor, scanned, out

    async def _post(self, client: httpx.AsyncClient, item: Outgoing) -> None:
        delay = self.backoff_s
        while True:
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "X-Voiceagent-Event": item.type,
                "X-Voiceagent-Delivery": f"evt_{item.event_id}",
                TIMESTAMP_HEADER: str(stamp),
                SIGNATURE_HEADER: sign(self.secret, stamp, item.body),
            }
            try:
                response = await client.post(self.url, content=item.body, headers=headers)
                if 200 <= response.status_code < 300:
                    WEBHOOK_DELIVERIES.labels(item.type, "ok").inc()
                    return
                WEBHOOK_DELIVERIES.labels(item.type, "http_error").inc()
                log.warning("webhook evt_%s: HTTP %s", item.event_id, response.status_code)
            except httpx.HTTPError as exc:
                WEBHOOK_DELIVERIES.labels(item.type, "network_error").inc()
                log.warning("webhook evt_%s: %s", item.event_id, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

    async def run_once(self) -> int:
        """Deliver every pending event (retrying each until it succeeds); return how many."""
        loop = asyncio.get_running_loop()
        sent = 0
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                cursor, scanned, batch = await loop.run_in_executor(self._db_pool, self._pending)
                if not batch:
                    if scanned == cursor:
                        return sent
                    await loop.run_in_executor(self._db_pool, self._write_cursor, scanned)
                    continue
                for item in batch:
                    await self._post(client, item)
                    await loop.run_in_executor(self._db_pool, self._write_cursor, item.event_id)
                    sent += 1

    async def run(self) -> None:
        """Poll and deliver until cancelled."""
        try:
            while True:
                try:
                    await self.run_once()
                except Exception:  # a database hiccup must not end the dispatcher
                    log.exception("webhook dispatcher")
                await asyncio.sleep(self.poll_s)
        finally:
            self._db_pool.shutdown(wait=False, cancel_futures=True)
