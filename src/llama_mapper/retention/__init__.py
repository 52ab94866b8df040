"""Retention policy: how long each tenant's evidence is kept, and what is due for deletion.

Pure rules, no I/O: the store (:mod:`llama_mapper.audit.retention`) applies them. Kept
apart so the same answer ("what would go, and why not") serves the dry run, the CLI, the
background task and the tests.
"""

from __future__ import annotations

from llama_mapper.retention.policy import (
    DEFAULT_DAYS,
    Decision,
    RetentionPolicy,
    cutoff_for,
    decide,
    format_ts,
)

__all__ = ["DEFAULT_DAYS", "Decision", "RetentionPolicy", "cutoff_for", "decide", "format_ts"]
