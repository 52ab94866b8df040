"""Real chDB targets and seeded evidence stores for the analytics tests."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from llama_mapper.analytics import Target, open_session
from llama_mapper.analytics.target import target_from_settings
from llama_mapper.config.settings import AnalyticsSettings

#: The TTL the tests ship with: the seeded events carry fixed 2026 dates, which a 400-day
#: TTL would start dropping from ClickHouse in 2027.
KEEP_DAYS = 20000


def embedded_target(root: Path) -> Target:
    return target_from_settings(AnalyticsSettings(), root)


def closed_port_url() -> str:
    """An http URL to a port nothing listens on (bound and released a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://mapper@127.0.0.1:{port}/mapper"


def select(target: Target, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
    """Run ``sql`` in a fresh session (the engine's folder is released again)."""
    with open_session(target, wait=10) as session:
        return session.query(sql, parameters=parameters or None)[1]


def count(target: Target, tenant: str | None = None, *, final: bool = True) -> int:
    where = "WHERE tenant_id = %(t)s" if tenant else ""
    modifier = "FINAL" if final else ""
    rows = select(target, f"SELECT count() FROM mapper.events {modifier} {where}", t=tenant)
    return int(rows[0][0])
