"""Analytics: evidence events shipped from the committed chain to ClickHouse.

The chain in the relational database stays the evidence; ClickHouse holds a derived copy
(labels, scores, versions, controls, keyed fingerprints; never raw output) for ad-hoc
questions over many events. See ``docs/analytics.md``.
"""

from __future__ import annotations

from llama_mapper.analytics.query import QueryFailed, QueryResult, run_query
from llama_mapper.analytics.shipper import AnalyticsShipper, ShipReport, ship
from llama_mapper.analytics.sql_guard import QueryRefused, check_select
from llama_mapper.analytics.target import (
    AnalyticsUnavailable,
    EngineBusy,
    Target,
    open_session,
    target_from_settings,
)

__all__ = [
    "AnalyticsShipper",
    "AnalyticsUnavailable",
    "EngineBusy",
    "QueryFailed",
    "QueryRefused",
    "QueryResult",
    "ShipReport",
    "Target",
    "check_select",
    "open_session",
    "run_query",
    "ship",
    "target_from_settings",
]
