"""PostgreSQL row-level security on every tenant-scoped table (no-op on SQLite).

Each table gets RLS enabled *and forced* (so it binds the table owner too: the mapper
usually owns the tables it migrates) and one policy, ``tenant_isolation``: a row is
visible and writable only when its ``tenant_id`` equals the transaction's
``app.tenant_id`` setting, or that setting is ``'*'`` (the documented all-tenants bypass
used by maintenance paths; see ``llama_mapper.storage.db.tenancy``). Superusers and roles
with BYPASSRLS are not bound by any policy: run the mapper as an ordinary role.

Revision ID: 0005_rls
Revises: 0004_retention
Create Date: 2026-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from llama_mapper.storage.db.tenancy import disable_rls_statements, enable_rls_statements

revision: str = "0005_rls"
down_revision: str | None = "0004_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tenant-scoped tables as of this revision (every table with a ``tenant_id``).
TABLES = (
    "api_keys",
    "audit_events",
    "audit_heads",
    "proj_label_daily",
    "proj_control_evidence",
    "proj_detector_quality",
    "proj_positions",
    "retention_holds",
    "audit_deks",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        for statement in enable_rls_statements(table):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        for statement in disable_rls_statements(table):
            op.execute(statement)
