"""Call-list status: ``importing`` while an upload is written batch by batch, then ``ready``.

Uploads used to be one transaction; on SQLite that held the database's write lock for the
whole upload (minutes for a million rows), so a live call could not commit a promise. Lists
already stored are complete: they become ``ready``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # A plain ADD COLUMN: SQLite's batch mode would rebuild call_lists, and dropping the old
    # table with foreign keys on would cascade to call_list_rows.
    op.add_column(
        "call_lists",
        sa.Column("status", sa.String(length=20), server_default="ready", nullable=False),
    )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "sqlite":  # native DROP COLUMN (SQLite 3.35+), no rebuild
        op.execute("ALTER TABLE call_lists DROP COLUMN status")
    else:
        op.drop_column("call_lists", "status")
