"""Initial CRM schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 01:31:07.320048
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "creditors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_creditors")),
        sa.UniqueConstraint("name", name=op.f("uq_creditors_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("api_token_hash", sa.String(length=128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('operator', 'supervisor', 'admin')", name=op.f("ck_users_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("api_token_hash", name=op.f("uq_users_api_token_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("entity", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(
        op.f("ix_audit_log_entity_entity_id"), "audit_log", ["entity", "entity_id"], unique=False
    )
    op.create_table(
        "portfolios",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creditor_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["creditor_id"], ["creditors.id"], name=op.f("fk_portfolios_creditor_id_creditors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolios")),
        sa.UniqueConstraint("creditor_id", "name", name=op.f("uq_portfolios_creditor_id_name")),
    )
    op.create_index(op.f("ix_portfolios_creditor_id"), "portfolios", ["creditor_id"], unique=False)
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("portfolio_id", sa.Integer(), nullable=False),
        sa.Column("external_ref", sa.String(length=100), nullable=False),
        sa.Column("debtor_name", sa.String(length=200), nullable=False),
        sa.Column("document_type", sa.String(length=20), nullable=True),
        sa.Column("document_number", sa.String(length=40), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("amount_owed_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("days_past_due", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("locale", sa.String(length=20), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'paid', 'closed', 'on_hold')", name=op.f("ck_accounts_status")
        ),
        sa.CheckConstraint("amount_owed_minor >= 0", name=op.f("ck_accounts_amount_owed")),
        sa.CheckConstraint("days_past_due >= 0", name=op.f("ck_accounts_days_past_due")),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_accounts_portfolio_id_portfolios")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint(
            "portfolio_id", "external_ref", name=op.f("uq_accounts_portfolio_id_external_ref")
        ),
    )
    op.create_index(
        op.f("ix_accounts_portfolio_id_document_number"),
        "accounts",
        ["portfolio_id", "document_number"],
        unique=False,
    )
    op.create_table(
        "call_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("portfolio_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("rejected_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["portfolio_id"], ["portfolios.id"], name=op.f("fk_call_lists_portfolio_id_portfolios")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_call_lists_uploaded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_lists")),
    )
    op.create_index(
        op.f("ix_call_lists_portfolio_id"), "call_lists", ["portfolio_id"], unique=False
    )
    op.create_table(
        "call_list_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_list_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_call_list_rows_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["call_list_id"],
            ["call_lists.id"],
            name=op.f("fk_call_list_rows_call_list_id_call_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_list_rows")),
        sa.UniqueConstraint(
            "call_list_id", "line_no", name=op.f("uq_call_list_rows_call_list_id_line_no")
        ),
    )
    op.create_index(
        op.f("ix_call_list_rows_account_id"), "call_list_rows", ["account_id"], unique=False
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("call_list_id", sa.Integer(), nullable=False),
        sa.Column("dialplan_id", sa.String(length=100), nullable=False),
        sa.Column("dialplan_version", sa.String(length=64), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("max_channels", sa.Integer(), nullable=False),
        sa.Column("retry_policy", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'paused', 'finished')", name=op.f("ck_campaigns_status")
        ),
        sa.CheckConstraint("max_channels > 0", name=op.f("ck_campaigns_max_channels")),
        sa.ForeignKeyConstraint(
            ["call_list_id"], ["call_lists.id"], name=op.f("fk_campaigns_call_list_id_call_lists")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(op.f("ix_campaigns_call_list_id"), "campaigns", ["call_list_id"], unique=False)
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("external_ref", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payments_amount")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_payments_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint(
            "account_id", "external_ref", name=op.f("uq_payments_account_id_external_ref")
        ),
    )
    op.create_index(op.f("ix_payments_account_id"), "payments", ["account_id"], unique=False)
    op.create_table(
        "phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("consent_source", sa.String(length=200), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "e164 LIKE '+%%' AND length(e164) BETWEEN 8 AND 16", name=op.f("ck_phones_e164")
        ),
        sa.CheckConstraint("type IN ('mobile', 'fixed', 'unknown')", name=op.f("ck_phones_type")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_phones_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phones")),
        sa.UniqueConstraint("account_id", "e164", name=op.f("uq_phones_account_id_e164")),
    )
    op.create_index(op.f("ix_phones_e164"), "phones", ["e164"], unique=False)
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("phone_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=30), nullable=True),
        sa.Column("sip_code", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_attempts_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_attempts_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["phone_id"], ["phones.id"], name=op.f("fk_attempts_phone_id_phones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    op.create_index(
        op.f("ix_attempts_account_id_started_at"),
        "attempts",
        ["account_id", "started_at"],
        unique=False,
    )
    op.create_index(op.f("ix_attempts_campaign_id"), "attempts", ["campaign_id"], unique=False)
    op.create_index(
        op.f("ix_attempts_phone_id_started_at"),
        "attempts",
        ["phone_id", "started_at"],
        unique=False,
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("phone_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("dialplan_id", sa.String(length=100), nullable=False),
        sa.Column("dialplan_version", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("right_party", sa.Boolean(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("recording_path", sa.String(length=500), nullable=True),
        sa.Column("transcript_path", sa.String(length=500), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('in_progress', 'ended')", name=op.f("ck_calls_status")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_calls_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["attempt_id"], ["attempts.id"], name=op.f("fk_calls_attempt_id_attempts")
        ),
        sa.ForeignKeyConstraint(["phone_id"], ["phones.id"], name=op.f("fk_calls_phone_id_phones")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_calls_attempt_id")),
    )
    op.create_index(
        op.f("ix_calls_account_id_started_at"), "calls", ["account_id", "started_at"], unique=False
    )
    op.create_index(op.f("ix_calls_status"), "calls", ["status"], unique=False)
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_events_call_id_calls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
    )
    op.create_index(op.f("ix_call_events_call_id"), "call_events", ["call_id"], unique=False)
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("phone_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'cancelled', 'missed')", name=op.f("ck_callbacks_status")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_callbacks_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_callbacks_call_id_calls")),
        sa.ForeignKeyConstraint(
            ["phone_id"], ["phones.id"], name=op.f("fk_callbacks_phone_id_phones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    op.create_index(op.f("ix_callbacks_account_id"), "callbacks", ["account_id"], unique=False)
    op.create_index(
        op.f("ix_callbacks_status_due_at"), "callbacks", ["status", "due_at"], unique=False
    )
    op.create_table(
        "contact_restrictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("phone_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("source_call_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('stop_contact', 'dispute', 'wrong_number')",
            name=op.f("ck_contact_restrictions_kind"),
        ),
        sa.CheckConstraint(
            "scope = 'account' OR phone_id IS NOT NULL",
            name=op.f("ck_contact_restrictions_phone_scope"),
        ),
        sa.CheckConstraint(
            "scope IN ('account', 'phone')", name=op.f("ck_contact_restrictions_scope")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_contact_restrictions_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_contact_restrictions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["phone_id"], ["phones.id"], name=op.f("fk_contact_restrictions_phone_id_phones")
        ),
        sa.ForeignKeyConstraint(
            ["source_call_id"],
            ["calls.id"],
            name=op.f("fk_contact_restrictions_source_call_id_calls"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_restrictions")),
    )
    op.create_index(
        op.f("ix_contact_restrictions_account_id"),
        "contact_restrictions",
        ["account_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_contact_restrictions_phone_id"), "contact_restrictions", ["phone_id"], unique=False
    )
    op.create_table(
        "promises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("plan", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("paid_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'kept', 'broken', 'cancelled')", name=op.f("ck_promises_status")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_promises_amount")),
        sa.CheckConstraint("paid_minor >= 0", name=op.f("ck_promises_paid")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_promises_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_promises_call_id_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promises")),
    )
    op.create_index(
        op.f("ix_promises_account_id_status"), "promises", ["account_id", "status"], unique=False
    )
    op.create_index(op.f("ix_promises_call_id"), "promises", ["call_id"], unique=False)
    op.create_index(
        op.f("ix_promises_status_due_date"), "promises", ["status", "due_date"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_promises_status_due_date"), table_name="promises")
    op.drop_index(op.f("ix_promises_call_id"), table_name="promises")
    op.drop_index(op.f("ix_promises_account_id_status"), table_name="promises")
    op.drop_table("promises")
    op.drop_index(op.f("ix_contact_restrictions_phone_id"), table_name="contact_restrictions")
    op.drop_index(op.f("ix_contact_restrictions_account_id"), table_name="contact_restrictions")
    op.drop_table("contact_restrictions")
    op.drop_index(op.f("ix_callbacks_status_due_at"), table_name="callbacks")
    op.drop_index(op.f("ix_callbacks_account_id"), table_name="callbacks")
    op.drop_table("callbacks")
    op.drop_index(op.f("ix_call_events_call_id"), table_name="call_events")
    op.drop_table("call_events")
    op.drop_index(op.f("ix_calls_status"), table_name="calls")
    op.drop_index(op.f("ix_calls_account_id_started_at"), table_name="calls")
    op.drop_table("calls")
    op.drop_index(op.f("ix_attempts_phone_id_started_at"), table_name="attempts")
    op.drop_index(op.f("ix_attempts_campaign_id"), table_name="attempts")
    op.drop_index(op.f("ix_attempts_account_id_started_at"), table_name="attempts")
    op.drop_table("attempts")
    op.drop_index(op.f("ix_phones_e164"), table_name="phones")
    op.drop_table("phones")
    op.drop_index(op.f("ix_payments_account_id"), table_name="payments")
    op.drop_table("payments")
    op.drop_index(op.f("ix_campaigns_call_list_id"), table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_index(op.f("ix_call_list_rows_account_id"), table_name="call_list_rows")
    op.drop_table("call_list_rows")
    op.drop_index(op.f("ix_call_lists_portfolio_id"), table_name="call_lists")
    op.drop_table("call_lists")
    op.drop_index(op.f("ix_accounts_portfolio_id_document_number"), table_name="accounts")
    op.drop_table("accounts")
    op.drop_index(op.f("ix_portfolios_creditor_id"), table_name="portfolios")
    op.drop_table("portfolios")
    op.drop_index(op.f("ix_audit_log_entity_entity_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("users")
    op.drop_table("creditors")
