"""Relational storage: engine construction, the schema and its Alembic migrations.

SQLite (a file in ``state_dir``) is the embedded default; PostgreSQL is the production
backend. The same SQLAlchemy Core queries run on both.
"""

from __future__ import annotations

from llama_mapper.storage.db.engine import create_engine, database_url, safe_url
from llama_mapper.storage.db.migrate import (
    current_revision,
    head_revision,
    open_database,
    upgrade,
)
from llama_mapper.storage.db.schema import api_keys, metadata

__all__ = [
    "api_keys",
    "create_engine",
    "current_revision",
    "database_url",
    "head_revision",
    "metadata",
    "open_database",
    "safe_url",
    "upgrade",
]
