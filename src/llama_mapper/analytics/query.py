"""Read-only ad-hoc queries over shipped events (``mapper analytics query``).

Two locks keep a query from changing anything: :func:`~llama_mapper.analytics.sql_guard.
check_select` refuses anything but one SELECT, and every query runs with ClickHouse's
``readonly=1`` (set last, after the few limits it needs, because read-only mode freezes the
session's settings). ``--tenant`` adds ClickHouse's ``additional_table_filters`` on the
events table, so every read of it — however the query spells it, through subqueries or
CTEs — sees only that tenant's rows. It is a convenience for operators, not a security
boundary between tenants: whoever may run this command can read the whole store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llama_mapper.analytics import ddl
from llama_mapper.analytics.sql_guard import check_select
from llama_mapper.analytics.target import AnalyticsUnavailable, Target, describe, open_session

QUERY_TIMEOUT_SECONDS = 60


class QueryFailed(ValueError):
    """ClickHouse refused or could not run the query; the message is its one-line reason."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    #: More rows matched than ``max_rows``; only the first ``max_rows`` are here.
    truncated: bool


def run_query(
    target: Target,
    sql: str,
    *,
    tenant_id: str | None = None,
    max_rows: int = 10_000,
    retention_days: int = 400,
    wait: float = 30.0,
) -> QueryResult:
    """Run one read-only SELECT against ``target`` (blocking).

    Raises :class:`~llama_mapper.analytics.sql_guard.QueryRefused` before connecting for a
    statement that is not a single SELECT, :class:`QueryFailed` for one ClickHouse rejects,
    and :class:`~llama_mapper.analytics.target.AnalyticsUnavailable` when it cannot be
    reached. The schema is created first, so a query before the first sync sees an empty
    table instead of an error.
    """
    statement = check_select(sql)
    with open_session(target, wait=wait) as session:
        session.ensure_schema(retention_days)
        # A fresh client on the target's database, so ``FROM events`` resolves there.
        session.client.database = target.database
        try:
            columns, rows = session.query(
                statement, settings=_settings(target, tenant_id, max_rows)
            )
        except AnalyticsUnavailable:
            raise
        except Exception as exc:
            raise QueryFailed(describe(exc)) from None
    return QueryResult(columns, rows[:max_rows], truncated=len(rows) > max_rows)


def _settings(target: Target, tenant_id: str | None, max_rows: int) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if tenant_id is not None:
        table = f"{target.database}.{ddl.TABLE}"
        settings["additional_table_filters"] = (
            "{" + _literal(table) + ": " + _literal(f"tenant_id = {_literal(tenant_id)}") + "}"
        )
    settings["max_result_rows"] = max_rows + 1
    settings["result_overflow_mode"] = "break"
    settings["max_execution_time"] = QUERY_TIMEOUT_SECONDS
    settings["readonly"] = 1  # last: it forbids changing any setting after it
    return settings


def _literal(value: str) -> str:
    """A ClickHouse single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
