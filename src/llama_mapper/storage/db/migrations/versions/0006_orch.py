"""The orchestration service's detector registry and versioned policy bundles.

The registry is deployment-wide; policy bundles belong to one tenant each and get the
same row-level security as every tenant table (see migration 0005_rls).

Revision ID: 0006_orch
Revises: 0005_rls
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from llama_mapper.storage.db.tenancy import disable_rls_statements, enable_rls_statements

revision: str = "0006_orch"
down_revision: str | None = "0005_rls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orch_detectors",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("timeout_ms", sa.BigInteger(), nullable=False),
        sa.Column("retries", sa.BigInteger(), nullable=False),
        sa.Column("content_types", sa.Text(), nullable=False),
        sa.Column("auth_secret", sa.Text(), nullable=True),
        sa.Column("pack", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("health", sa.Text(), nullable=False),
        sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_orch_detectors"),
    )
    op.create_table(
        "orch_policies",
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("bundle", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "bundle", "version", name="pk_orch_policies"),
    )
    op.create_index(
        "ix_orch_policies_tenant_id_bundle_status",
        "orch_policies",
        ["tenant_id", "bundle", "status"],
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in enable_rls_statements("orch_policies"):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in disable_rls_statements("orch_policies"):
            op.execute(statement)
    op.drop_index("ix_orch_policies_tenant_id_bundle_status", table_name="orch_policies")
    op.drop_table("orch_policies")
    op.drop_table("orch_detectors")
