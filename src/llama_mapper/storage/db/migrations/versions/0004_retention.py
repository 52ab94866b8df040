"""Retention and kept metadata: legal holds, wrapped data keys, the retention boundary.

* ``retention_holds``: one row per legal hold, set and released with who, when and why;
  a hold is active while ``released_at`` is null.
* ``audit_deks``: the wrapped data key of each event whose kept metadata is encrypted;
  kept out of the event body so re-wrapping never changes a chain hash.
* ``audit_heads.tombstone_seq``: seq of the tenant's newest tombstone, so verification
  finds where retention cut the chain without scanning it (the tombstone is verified when
  its row is reached, so this column is not trusted).

Revision ID: 0004_retention
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_retention"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_holds",
        sa.Column("hold_id", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.Text(), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("hold_id", name="pk_retention_holds"),
    )
    op.create_index("ix_retention_holds_tenant_id", "retention_holds", ["tenant_id"])
    op.create_table(
        "audit_deks",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("kek_id", sa.Text(), nullable=False),
        sa.Column("wrapped_dek", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name="pk_audit_deks"),
    )
    op.create_index("ix_audit_deks_tenant_id_kek_id", "audit_deks", ["tenant_id", "kek_id"])
    with op.batch_alter_table("audit_heads") as batch:
        batch.add_column(
            sa.Column("tombstone_seq", sa.BigInteger(), autoincrement=False, nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_heads") as batch:
        batch.drop_column("tombstone_seq")
    op.drop_index("ix_audit_deks_tenant_id_kek_id", table_name="audit_deks")
    op.drop_table("audit_deks")
    op.drop_index("ix_retention_holds_tenant_id", table_name="retention_holds")
    op.drop_table("retention_holds")
