"""Dialer queue: campaign entries, the one-call-per-account guard, campaign compliance/pacing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 01:59:38.291515
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "active_dials",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_active_dials_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["attempt_id"], ["attempts.id"], name=op.f("fk_active_dials_attempt_id_attempts")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_active_dials_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_active_dials")),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_active_dials_attempt_id")),
    )
    op.create_index(
        op.f("ix_active_dials_campaign_id"), "active_dials", ["campaign_id"], unique=False
    )
    op.create_table(
        "campaign_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_result", sa.String(length=30), nullable=True),
        sa.Column("last_attempt_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'in_progress', 'done')",
            name=op.f("ck_campaign_entries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_campaign_entries_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_entries_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["last_attempt_id"],
            ["attempts.id"],
            name=op.f("fk_campaign_entries_last_attempt_id_attempts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_entries")),
        sa.UniqueConstraint(
            "campaign_id", "account_id", name=op.f("uq_campaign_entries_campaign_id_account_id")
        ),
    )
    op.create_index(
        op.f("ix_campaign_entries_account_id"), "campaign_entries", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_campaign_entries_campaign_id_status_priority_next_at"),
        "campaign_entries",
        ["campaign_id", "status", "priority", "next_at"],
        unique=False,
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jurisdiction", sa.String(length=8), nullable=True))
        batch_op.add_column(
            sa.Column("pacing", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("started_at")
        batch_op.drop_column("pacing")
        batch_op.drop_column("jurisdiction")
    op.drop_index(
        op.f("ix_campaign_entries_campaign_id_status_priority_next_at"),
        table_name="campaign_entries",
    )
    op.drop_index(op.f("ix_campaign_entries_account_id"), table_name="campaign_entries")
    op.drop_table("campaign_entries")
    op.drop_index(op.f("ix_active_dials_campaign_id"), table_name="active_dials")
    op.drop_table("active_dials")
