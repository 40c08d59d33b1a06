"""The CRM schema: debtors, their phones, call lists, campaigns, calls and what calls produced.

Money is integer minor units plus an ISO 4217 currency; timestamps are aware UTC
(:class:`~voiceagent.crm.types.UtcDateTime`); enumerations are strings with CHECK constraints
so that SQLite and PostgreSQL share one schema. Mirrored by ``migrations/versions``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voiceagent.crm.types import UtcDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PHONE_TYPES = ("mobile", "fixed", "unknown")
ACCOUNT_STATUSES = ("active", "paid", "closed", "on_hold")
CAMPAIGN_STATUSES = ("draft", "running", "paused", "finished")
LIST_STATUSES = ("importing", "ready", "failed")
"""A list is written batch by batch (``importing``); only a ``ready`` one can be dialled."""
ENTRY_STATUSES = ("pending", "in_progress", "done")
CALL_STATUSES = ("in_progress", "ended")
PROMISE_STATUSES = ("pending", "kept", "broken", "cancelled")
CALLBACK_STATUSES = ("pending", "done", "cancelled", "missed")
RESTRICTIONS = ("stop_contact", "dispute", "wrong_number")
SCOPES = ("account", "phone")
ROLES = ("operator", "supervisor", "admin")
E164_CHECK = "e164 LIKE '+%' AND length(e164) BETWEEN 8 AND 16"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


def _created() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


class Creditor(Base):
    """The company that owns the debts."""

    __tablename__ = "creditors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = _created()


class Portfolio(Base):
    """A creditor's book of accounts (external references are unique within it)."""

    __tablename__ = "portfolios"
    __table_args__ = (UniqueConstraint("creditor_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class Account(Base):
    """A debtor account: who owes what, where they live (timezone) and in which language."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("portfolio_id", "external_ref"),
        Index(None, "portfolio_id", "document_number"),
        CheckConstraint("amount_owed_minor >= 0", name="amount_owed"),
        CheckConstraint("days_past_due >= 0", name="days_past_due"),
        CheckConstraint(_in("status", ACCOUNT_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id"))
    external_ref: Mapped[str] = mapped_column(String(100))
    """The creditor's account number (dedup key with the portfolio)."""
    debtor_name: Mapped[str] = mapped_column(String(200))
    document_type: Mapped[str | None] = mapped_column(String(20))
    """CC, CPF, DNI, RUT, SSN..."""
    document_number: Mapped[str | None] = mapped_column(String(40))
    birth_year: Mapped[int | None]
    amount_owed_minor: Mapped[int] = mapped_column(BigInteger)
    """Minor units of ``currency`` (cents)."""
    currency: Mapped[str] = mapped_column(String(3))
    days_past_due: Mapped[int] = mapped_column(default=0)
    due_date: Mapped[date | None]
    timezone: Mapped[str] = mapped_column(String(64))
    """IANA zone of the debtor (calling windows, callback times)."""
    email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), default="active")
    locale: Mapped[str] = mapped_column(String(20))
    """Dialplan locale, e.g. ``es-419``."""
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Further columns of the imported row (usable in prompts)."""
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Phone(Base):
    """A number to reach an account at (E.164), with the consent to call it."""

    __tablename__ = "phones"
    __table_args__ = (
        UniqueConstraint("account_id", "e164"),
        CheckConstraint(E164_CHECK, name="e164"),
        CheckConstraint(_in("type", PHONE_TYPES), name="type"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(16), index=True)
    type: Mapped[str] = mapped_column(String(10), default="unknown")
    consent: Mapped[bool] = mapped_column(default=False)
    consent_source: Mapped[str | None] = mapped_column(String(200))
    consent_at: Mapped[datetime | None]
    priority: Mapped[int] = mapped_column(default=0)
    """Lower is dialled first."""
    created_at: Mapped[datetime] = _created()


class CallList(Base):
    """One uploaded CSV/XLSX file."""

    __tablename__ = "call_lists"
    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    row_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(20), default="ready", server_default="ready")
    """One of :data:`LIST_STATUSES`."""
    created_at: Mapped[datetime] = _created()


class CallListRow(Base):
    """One line of an uploaded file, kept raw, with the account it became (or why not)."""

    __tablename__ = "call_list_rows"
    __table_args__ = (UniqueConstraint("call_list_id", "line_no"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_list_id: Mapped[int] = mapped_column(ForeignKey("call_lists.id", ondelete="CASCADE"))
    line_no: Mapped[int]
    """1-based line (CSV) or row (XLSX) in the uploaded file."""
    raw: Mapped[dict[str, Any]]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    error: Mapped[str | None] = mapped_column(Text)


class Campaign(Base):
    """A dialling run over a call list with one dialplan, schedule and retry policy."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint("max_channels > 0", name="max_channels"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    call_list_id: Mapped[int] = mapped_column(ForeignKey("call_lists.id"), index=True)
    dialplan_id: Mapped[str] = mapped_column(String(100))
    """``<locale>/<name>``, e.g. ``es-419/early``."""
    dialplan_version: Mapped[str] = mapped_column(String(64))
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    max_channels: Mapped[int] = mapped_column(default=1)
    retry_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    jurisdiction: Mapped[str | None] = mapped_column(String(8))
    """Compliance pack (``CO``, ``US``...); ``None``: each account's own country."""
    pacing: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Pacing mode and limits (:class:`voiceagent.dialer.campaigns.PacingConfig`)."""
    started_at: Mapped[datetime | None]
    """First start; wave days count from its date."""
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CampaignEntry(Base):
    """One account's place in a campaign's dialling queue (what the dialer reserves)."""

    __tablename__ = "campaign_entries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "account_id"),
        Index(None, "campaign_id", "status", "priority", "next_at", "id"),
        Index(None, "account_id"),
        CheckConstraint(_in("status", ENTRY_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    priority: Mapped[int] = mapped_column(default=0)
    """Lower is dialled first."""
    next_at: Mapped[datetime]
    """When the account is next due (retry delay, compliance reopening, callback)."""
    attempts: Mapped[int] = mapped_column(default=0)
    """Attempts counted against the campaign's retry policy."""
    last_result: Mapped[str | None] = mapped_column(String(30))
    """Result of the latest attempt, or why the account is done without one."""
    last_attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ActiveDial(Base):
    """An account with a call in progress: one per account and per debtor, in any campaign."""

    __tablename__ = "active_dials"
    __table_args__ = (Index("uq_active_dials_person_id", "person_id", unique=True),)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), unique=True)
    person_id: Mapped[int | None]
    """The lowest account id of the debtor's accounts with the creditor (same document number):
    two debts of one person are never dialled at once. ``None`` only on rows from before it."""
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    worker: Mapped[str] = mapped_column(String(100))
    """``host:pid`` of the dialer that reserved it (stale rows are released per worker)."""
    reserved_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    """Every dial, answered or not (frequency caps count these)."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index(None, "account_id", "started_at"),
        Index(None, "phone_id", "started_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    phone_id: Mapped[int] = mapped_column(ForeignKey("phones.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(String(30))
    """Telephony result: answered, no_answer, busy, rejected, failed, machine..."""
    sip_code: Mapped[int | None]


class Call(Base):
    """A conversation (an answered attempt or an inbound call), keyed by the call id."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(_in("status", CALL_STATUSES), name="status"),
        Index(None, "account_id", "started_at"),
        Index(None, "status"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The call id the session logs with."""
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("phones.id"))
    direction: Mapped[str] = mapped_column(String(10), default="outbound")
    dialplan_id: Mapped[str] = mapped_column(String(100))
    dialplan_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="in_progress")
    outcome: Mapped[str | None] = mapped_column(String(30))
    right_party: Mapped[bool] = mapped_column(default=False)
    """The debtor was identified (right-party contact)."""
    interrupted: Mapped[bool] = mapped_column(default=False)
    """The worker died mid-call; closed on restart by ``mark_interrupted_calls``."""
    recording_path: Mapped[str | None] = mapped_column(String(500))
    transcript_path: Mapped[str | None] = mapped_column(String(500))
    worker: Mapped[str | None] = mapped_column(String(100))
    """``host:pid`` of the process that ran the call."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None]
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Turn latency summary and the like (milliseconds)."""


class CallEvent(Base):
    """Append-only journal of what a call committed (every sink write), for audit and replay."""

    __tablename__ = "call_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Promise(Base):
    """A promise to pay, made on a call (or entered by an operator)."""

    __tablename__ = "promises"
    __table_args__ = (
        Index(None, "account_id", "status"),
        Index(None, "status", "due_date"),
        CheckConstraint("amount_minor > 0", name="amount"),
        CheckConstraint("paid_minor >= 0", name="paid"),
        CheckConstraint(_in("status", PROMISE_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date]
    plan: Mapped[str] = mapped_column(String(20), default="full")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    """Payments applied to this promise so far."""
    created_at: Mapped[datetime] = _created()
    resolved_at: Mapped[datetime | None]


class Callback(Base):
    """A call back the debtor asked for."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index(None, "status", "due_at"),
        CheckConstraint(_in("status", CALLBACK_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("phones.id"))
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = _created()


class ContactRestriction(Base):
    """Stop-contact, dispute or wrong-number, on a whole account or on one phone."""

    __tablename__ = "contact_restrictions"
    __table_args__ = (
        CheckConstraint(_in("kind", RESTRICTIONS), name="kind"),
        CheckConstraint(_in("scope", SCOPES), name="scope"),
        CheckConstraint("scope = 'account' OR phone_id IS NOT NULL", name="phone_scope"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("phones.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(10))
    source_call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    lifted_at: Mapped[datetime | None]


class Payment(Base):
    """A payment the creditor reported back."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("account_id", "external_ref"),
        CheckConstraint("amount_minor > 0", name="amount"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[date]
    external_ref: Mapped[str | None] = mapped_column(String(100))
    """The creditor's transaction id (re-reports are ignored)."""
    source: Mapped[str] = mapped_column(String(50), default="import")
    created_at: Mapped[datetime] = _created()


class User(Base):
    """A dashboard/API user; only hashes of secrets are stored."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    api_token_hash: Mapped[str | None] = mapped_column(String(128), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _created()


class AuditLog(Base):
    """Who did what to which record (append-only)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
