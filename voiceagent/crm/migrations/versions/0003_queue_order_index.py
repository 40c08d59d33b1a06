"""Queue order index: ``campaign_entries (campaign_id, status, priority, next_at, id)``.

With ``id`` in the index, PostgreSQL reads the dialer's order (priority, due time, id) straight
from it; without it, entries queued at one moment (a campaign start queues them all at once)
form one group that is sorted whole on every reservation. SQLite's index already ends in the
rowid, so the order there is unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("campaign_id", "status", "priority", "next_at")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index(
        op.f("ix_campaign_entries_campaign_id_status_priority_next_at_id"),
        "campaign_entries",
        [*OLD, "id"],
        unique=False,
    )
    op.drop_index(
        op.f("ix_campaign_entries_campaign_id_status_priority_next_at"),
        table_name="campaign_entries",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.create_index(
        op.f("ix_campaign_entries_campaign_id_status_priority_next_at"),
        "campaign_entries",
        list(OLD),
        unique=False,
    )
    op.drop_index(
        op.f("ix_campaign_entries_campaign_id_status_priority_next_at_id"),
        table_name="campaign_entries",
    )
