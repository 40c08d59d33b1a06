"""One call in progress per person: ``active_dials.person_id``, unique.

A debtor with two debts at one creditor (two accounts, one document number) could be dialled
about both at once from two campaigns. The dialer now writes the person (the lowest account
id of those accounts) with each reservation; the unique index refuses a second one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("active_dials", sa.Column("person_id", sa.Integer(), nullable=True))
    op.create_index(op.f("uq_active_dials_person_id"), "active_dials", ["person_id"], unique=True)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("uq_active_dials_person_id"), table_name="active_dials")
    if op.get_bind().dialect.name == "sqlite":  # native DROP COLUMN (SQLite 3.35+), no rebuild
        op.execute("ALTER TABLE active_dials DROP COLUMN person_id")
    else:
        op.drop_column("active_dials", "person_id")
