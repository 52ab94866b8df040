"""Analytics shipping cursors: the last seq of each tenant's chain inserted into ClickHouse.

No rows are created: a tenant without a cursor is shipped from its first event.

Revision ID: 0005_analytics
Revises: 0004_retention
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_analytics"
down_revision: str | None = "0004_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_cursors",
        sa.Column("sink", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sink", "tenant_id", name="pk_analytics_cursors"),
    )


def downgrade() -> None:
    op.drop_table("analytics_cursors")
