"""Analytics shipping cursors: the last seq of each tenant's chain inserted into ClickHouse.

No rows are created: a tenant without a cursor is shipped from its first event. On
PostgreSQL the table gets the same forced row-level security as every tenant-scoped table
(policy ``tenant_isolation``, see migration ``0005_rls``).

Revision ID: 0007_analytics
Revises: 0006_orch
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_analytics"
down_revision: str | None = "0006_orch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONDITION = (
    "tenant_id = current_setting('app.tenant_id', true) "
    "OR current_setting('app.tenant_id', true) = '*'"
)


def upgrade() -> None:
    op.create_table(
        "analytics_cursors",
        sa.Column("sink", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sink", "tenant_id", name="pk_analytics_cursors"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE analytics_cursors ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE analytics_cursors FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY tenant_isolation ON analytics_cursors "
            f"USING ({_CONDITION}) WITH CHECK ({_CONDITION})"
        )


def downgrade() -> None:
    op.drop_table("analytics_cursors")  # drops its policy with it
