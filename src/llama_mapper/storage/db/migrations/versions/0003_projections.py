"""Read models of the evidence store: label/day, control and detector counts, positions.

Every tenant that already has events gets a position of 0, so the read models report
themselves stale for it (position behind the chain head) until
``mapper audit rebuild-projections`` folds its existing events in.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proj_label_daily",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day", "label", name="pk_proj_label_daily"),
    )
    op.create_table(
        "proj_control_evidence",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("control", sa.Text(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "control", name="pk_proj_control_evidence"),
    )
    op.create_table(
        "proj_detector_quality",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("detector", sa.Text(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("unknown_events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "detector", name="pk_proj_detector_quality"),
    )
    op.create_table(
        "proj_positions",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_proj_positions"),
    )
    op.execute("INSERT INTO proj_positions (tenant_id, seq) SELECT tenant_id, 0 FROM audit_heads")


def downgrade() -> None:
    op.drop_table("proj_positions")
    op.drop_table("proj_detector_quality")
    op.drop_table("proj_control_evidence")
    op.drop_table("proj_label_daily")
