"""What the dialog engine asks the call to do, in order (a CRM write precedes its words)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Say:
    """Speak one prompt, already rendered."""

    text: str
    prompt_id: str
    interruptible: bool = True
    parts: tuple[tuple[str, bool], ...] = ()
    """``text`` as ``(piece, variable)`` parts: template text and the values filled in."""


@dataclass(frozen=True, slots=True)
class RecordPromise:
    """Commit a promise to pay; the confirmation is spoken only after this succeeds."""

    amount: Decimal
    currency: str
    due: date
    plan: str
    """``full``, ``settlement`` or ``installment``."""


@dataclass(frozen=True, slots=True)
class ScheduleCallback:
    """Commit a callback at a local date and time of the debtor."""

    at: datetime


@dataclass(frozen=True, slots=True)
class RecordFlag:
    """Commit a contact flag (stop_contact, dispute, wrong_number, already_paid, refusal)."""

    flag: str


@dataclass(frozen=True, slots=True)
class SendSlip:
    """Send a payment slip or link by ``sms``, ``email`` or ``whatsapp``."""

    channel: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Transfer the call to a human queue."""

    target: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """End the call (after everything before it has been spoken)."""


Action = Say | RecordPromise | ScheduleCallback | RecordFlag | SendSlip | Transfer | Hangup
"""Everything ``step`` can return."""
