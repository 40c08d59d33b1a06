"""The slip dispatcher's state file: the scan cursor over ``call_events`` and each delivery.

One JSON document, replaced atomically (write a temporary file, fsync, rename, fsync the
directory), so a reader or a restarted dispatcher always sees a whole, durable state. A lock
file (``flock``) keeps a second dispatcher off the same state. Everything here blocks: the
dispatcher runs it on its I/O thread.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

STATUSES = ("pending", "sending", "sent", "retrying", "failed")
"""``sending``: handed to SMTP / the webhook and not yet known to have succeeded."""
TERMINAL = ("sent", "failed")
FORMAT = 1


class DispatcherBusy(RuntimeError):
    """Another slip dispatcher holds the state file's lock."""


@dataclass(slots=True)
class Delivery:
    """One ``send_slip`` call event and what became of it."""

    event_id: int
    call_id: str
    channel: str
    """``email``, ``sms`` or ``whatsapp`` (as the dialog asked)."""
    status: str = "pending"
    attempts: int = 0
    """Sends tried so far (a send interrupted by a crash counts)."""
    reason: str | None = None
    """Why the last attempt failed (``retrying``/``failed``), or what was resent."""
    to: str | None = None
    """Masked recipient of the last attempt (``m***@example.com``, ``+57******4567``)."""
    requested_at: str = ""
    """ISO 8601 UTC: when the call asked for the slip (the event's ``at``)."""
    next_at: str | None = None
    """ISO 8601 UTC: earliest next attempt (``retrying``)."""
    updated_at: str = ""
    sent_at: str | None = None

    def due(self, now: datetime) -> bool:
        """Whether the dispatcher should try (again) at ``now``."""
        if self.status in ("pending", "sending"):
            return True
        return self.status == "retrying" and (
            self.next_at is None or datetime.fromisoformat(self.next_at) <= now
        )


@dataclass(slots=True)
class OutboxState:
    """Cursor plus deliveries, as stored in the file."""

    cursor: int = 0
    """Every ``send_slip`` event with an id up to this one is in ``deliveries`` (or pruned)."""
    deliveries: dict[int, Delivery] = field(default_factory=dict)

    def prune(self, before: datetime) -> None:
        """Forget finished deliveries last updated before ``before`` (the file stays small)."""
        cutoff = before.isoformat()
        for event_id in [
            k for k, d in self.deliveries.items() if d.status in TERMINAL and d.updated_at < cutoff
        ]:
            del self.deliveries[event_id]


class OutboxFile:
    """Reads and atomically rewrites the state file; holds its lock while open.

    Args:
        path: The JSON state file (its directory is created).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    @property
    def locked(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock_fd is not None

    def lock(self) -> None:
        """Take the exclusive lock, or raise :class:`DispatcherBusy` at once."""
        if self._lock_fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DispatcherBusy(f"another slip dispatcher is using {self.path}") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock (closing the descriptor releases the flock)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def exists(self) -> bool:
        """Whether a state was ever saved."""
        return self.path.exists()

    def load(self) -> OutboxState:
        """The saved state (empty if none)."""
        try:
            raw: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return OutboxState()
        if raw.get("format") != FORMAT:
            raise ValueError(f"{self.path}: unknown state format {raw.get('format')!r}")
        deliveries = {int(k): Delivery(**v) for k, v in raw.get("deliveries", {}).items()}
        return OutboxState(int(raw.get("cursor", 0)), deliveries)

    def save(self, state: OutboxState) -> None:
        """Durably replace the file with ``state`` (requires the lock)."""
        if self._lock_fd is None:
            raise RuntimeError("save() without the lock")
        doc = {
            "format": FORMAT,
            "cursor": state.cursor,
            "deliveries": {str(k): asdict(d) for k, d in sorted(state.deliveries.items())},
        }
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:  # the rename itself must survive a power cut too
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def backoff(attempts: int, first_s: float, max_s: float) -> timedelta:
    """Delay before attempt ``attempts + 1``: ``first_s`` doubling per attempt, capped."""
    return timedelta(seconds=min(first_s * 2 ** max(attempts - 1, 0), max_s))


def requeue(path: Path, event_ids: list[int] | None, now: datetime) -> list[int]:
    """Put ``failed`` deliveries (those listed, or all) back to ``pending``; their ids.

    Raises:
        DispatcherBusy: A dispatcher is running on this state file (stop it first).
    """
    outbox = OutboxFile(path)
    if not outbox.exists():  # saving an empty state would make the next start replay history
        return []
    outbox.lock()
    try:
        state = outbox.load()
        chosen = [
            d
            for d in state.deliveries.values()
            if d.status == "failed" and (event_ids is None or d.event_id in event_ids)
        ]
        for d in chosen:
            d.status, d.attempts, d.next_at, d.updated_at = "pending", 0, None, now.isoformat()
            d.reason = "requeued by an operator"
        outbox.save(state)
        return sorted(d.event_id for d in chosen)
    finally:
        outbox.unlock()
