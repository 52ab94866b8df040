"""The analytics tests run the real ClickHouse engine in-process (chDB, the `analytics`
extra that `dev` includes): skipped without it, failed under LLAMA_MAPPER_REQUIRE_SERVICES=1."""

from __future__ import annotations

import importlib.util

import pytest
from tests.analytics.support import KEEP_DAYS
from tests.servicecheck import require


@pytest.fixture(autouse=True)
def _chdb_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    require(importlib.util.find_spec("chdb") is not None, "chDB (pip install '.[analytics]')")
    # Settings-built shippers (CLI, server) use the same long TTL as KEEP_DAYS.
    monkeypatch.setenv("LLAMA_MAPPER_ANALYTICS__RETENTION_DAYS", str(KEEP_DAYS))
