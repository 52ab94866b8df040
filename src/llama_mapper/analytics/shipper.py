"""Ship committed chain events to ClickHouse: one pass on demand, or every interval.

Nothing can be lost and /map never waits: the shipper reads only what the evidence store
already committed (``audit_events``, after each tenant's cursor), so events keep waiting in
the chain for as long as ClickHouse is down, and the write path does not know analytics
exists. A pass inserts a batch, then advances the cursor (see
:mod:`llama_mapper.analytics.cursors`); ClickHouse calls run in a thread.

Only one process ships at a time: the first worker on a host to take the lease file in
``state_dir`` keeps it until it stops or dies (the others stand by and take over then), and
on PostgreSQL each pass also takes an advisory lock, which serialises replicas on several
hosts. Shipping twice would be harmless (the cursor only moves forward and the table drops
duplicates), only wasteful.

Logs carry counts, exception type names and ClickHouse's one-line reason, never event
content.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.analytics import cursors, rows
from llama_mapper.analytics.target import (
    AnalyticsUnavailable,
    EngineBusy,
    Session,
    Target,
    describe,
    open_session,
)

if TYPE_CHECKING:
    from llama_mapper.config.settings import AnalyticsSettings
    from llama_mapper.observability.metrics import Metrics

logger = logging.getLogger("llama_mapper.analytics")
#: Arbitrary constant for the PostgreSQL advisory lock of the shipper lease.
PG_SHIP_LOCK = 0x6C6D_616E_6C79
BACKEND_NAME = "clickhouse"
#: A background pass ships at most this many batches before pausing for BACKLOG_PAUSE.
PASS_BATCHES = 20
BACKLOG_PAUSE = 0.5


@dataclass
class ShipReport:
    """What one pass did: events inserted per tenant, and rows that shipped bare or not."""

    shipped: dict[str, int] = field(default_factory=dict)
    other: int = 0
    skipped: int = 0
    #: The pass stopped at ``max_events`` with events still behind.
    more: bool = False
    #: Retention tombstones applied to ClickHouse (rows of their seq range deleted), and
    #: how many of those deletes ClickHouse refused.
    deleted_ranges: int = 0
    delete_errors: int = 0

    @property
    def total(self) -> int:
        return sum(self.shipped.values())


async def ship(
    engine: AsyncEngine,
    target: Target,
    *,
    retention_days: int,
    batch_size: int,
    tenant_id: str | None = None,
    wait: float = 0.0,
    max_events: int | None = None,
) -> ShipReport:
    """Ship every tenant's (or ``tenant_id``'s) events after its cursor; one pass.

    When nothing is behind, a server is only connected to (a health check) and the embedded
    engine is not opened at all (it costs memory and its folder lock). Raises
    :class:`~llama_mapper.analytics.target.AnalyticsUnavailable` (or ``EngineBusy``) when
    ClickHouse cannot be used; whatever was inserted before that keeps its cursor.
    ``max_events`` ends the pass early (``report.more`` is then true), so the server lets go
    of the embedded engine between chunks of a large backlog.
    """
    report = ShipReport()
    behind = [p for p in await cursors.positions(engine, target.sink, tenant_id) if p.behind]
    if not behind:
        if target.folder is None:  # a server: connecting is a cheap health check
            async with _session(target, wait):
                pass
        return report
    async with _session(target, wait) as session:
        await asyncio.to_thread(session.ensure_schema, retention_days)
        for position in behind:
            after = position.cursor_seq
            while after < position.head_seq:
                if max_events is not None and report.total >= max_events:
                    report.more = True
                    return report
                chain_rows = await cursors.read_after(engine, position.tenant_id, after, batch_size)
                if not chain_rows:
                    # The head was read first, and rows commit with it: rows up to it that
                    # are not there were removed (retention). Nothing is left to wait for.
                    await cursors.advance(
                        engine, target.sink, position.tenant_id, position.head_seq
                    )
                    break
                converted = rows.convert(chain_rows)
                try:
                    await asyncio.to_thread(session.insert, converted.rows)
                except Exception as exc:
                    raise AnalyticsUnavailable(f"insert failed: {describe(exc)}") from None
                for deletion in converted.deletions:
                    report.deleted_ranges += 1
                    try:
                        await asyncio.to_thread(session.delete_range, *deletion)
                    except Exception as exc:
                        # Not fatal: the rows hold no content and the table TTL still
                        # removes them; a stuck shipper would hold back every later event.
                        report.delete_errors += 1
                        logger.warning("analytics: retention delete failed: %s", describe(exc))
                after = chain_rows[-1].seq
                await cursors.advance(engine, target.sink, position.tenant_id, after)
                tenant = position.tenant_id
                report.shipped[tenant] = report.shipped.get(tenant, 0) + len(converted.rows)
                report.other += converted.other
                report.skipped += converted.skipped
    return report


@contextlib.asynccontextmanager
async def _session(target: Target, wait: float) -> AsyncIterator[Session]:
    stack = contextlib.ExitStack()
    session = await asyncio.to_thread(stack.enter_context, open_session(target, wait=wait))
    try:
        yield session
    finally:
        await asyncio.to_thread(stack.close)


@dataclass
class ShipperHealth:
    """The background shipper's last outcome, for /ready and metrics."""

    state: str = "starting"  # starting | ok | standby | down
    reason: str = ""
    behind: int = 0
    shipped: int = 0
    last_success: float | None = None

    @property
    def ok(self) -> bool:
        return self.state != "down"

    def describe(self, backend: str) -> str:
        if self.state == "down":
            return f"down ({backend}: {self.reason}; {self.behind} events wait in the chain)"
        if self.state == "standby":
            return f"standby ({backend}: {self.reason})"
        return f"{self.state} ({backend}, {self.shipped} shipped, {self.behind} behind)"


class AnalyticsShipper:
    """Runs :func:`ship` every ``interval_seconds`` in the server (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        target: Target,
        settings: AnalyticsSettings,
        *,
        lease_file: Path,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.target = target
        self.settings = settings
        self.lease_file = lease_file
        self._lease = _FileLease(lease_file)
        self.health = ShipperHealth()
        self._metrics = _ShipperMetrics(metrics) if metrics is not None else None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Start the loop (idempotent; a stopped shipper starts again, like the writer)."""
        if self._task is not None and not self._task.done():
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="llama-mapper-analytics-shipper")

    async def stop(self, timeout: float = 5.0) -> None:
        """Let a running pass finish (up to ``timeout``), then end the loop."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        self._lease.release()  # another worker takes over at its next interval

    async def run_once(self) -> ShipReport | None:
        """One pass with health bookkeeping; ``None`` when another process ships.

        Never raises for ClickHouse or database trouble: that is recorded in
        :attr:`health`, logged once, and retried next interval.
        """
        if not self._lease.acquire():
            self._standby("another worker on this host ships")
            return None
        try:
            async with _pg_lease(self.engine) as pg_held:
                if not pg_held:
                    self._standby("another replica ships")
                    return None
                report = await ship(
                    self.engine,
                    self.target,
                    retention_days=self.settings.retention_days,
                    batch_size=self.settings.batch_size,
                    max_events=self.settings.batch_size * PASS_BATCHES,
                )
        except EngineBusy:
            self._standby("the embedded engine is in use by another process")
            return None
        except Exception as exc:
            self._failed(exc)
            # How much waits, for /ready; in a database outage the last figure stays.
            with contextlib.suppress(Exception):
                self.health.behind = await self._behind_now()
            if self._metrics is not None:
                self._metrics.behind.set(self.health.behind)
            return None
        await self._succeeded(report)
        return report

    async def _loop(self) -> None:
        while not self._stop.is_set():
            report = await self.run_once()
            # A large backlog ships in chunks with short breaks, in which a CLI command
            # waiting for the embedded engine's folder gets its turn.
            pause = BACKLOG_PAUSE if report is not None and report.more else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause or self.settings.interval_seconds)

    def _standby(self, reason: str) -> None:
        self.health.state, self.health.reason = "standby", reason

    def _failed(self, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, AnalyticsUnavailable) else describe(exc)
        if not isinstance(exc, AnalyticsUnavailable):
            reason = f"{type(exc).__name__}: {reason}"
        self.health.state, self.health.reason = "down", reason
        logger.warning("analytics shipping failed; events wait in the chain: %s", reason)
        if self._metrics is not None:
            self._metrics.down()

    async def _succeeded(self, report: ShipReport) -> None:
        self.health.state, self.health.reason = "ok", ""
        self.health.shipped += report.total
        self.health.last_success = time.time()
        try:
            self.health.behind = await self._behind_now()
        except Exception:  # the pass succeeded; a failed recount only leaves the last figure
            logger.warning("analytics lag could not be counted")
        if report.other or report.skipped:
            logger.warning(
                "analytics: %d events of unknown kind shipped bare, %d without a time skipped",
                report.other,
                report.skipped,
            )
        if self._metrics is not None:
            self._metrics.up(report, self.health)

    async def _behind_now(self) -> int:
        return sum(p.behind for p in await cursors.positions(self.engine, self.target.sink))


class _ShipperMetrics:
    """Shipper series on the app's registry (names are fixed; no tenant or content labels)."""

    def __init__(self, metrics: Metrics) -> None:
        from prometheus_client import Counter, Gauge

        self.metrics = metrics
        registry = metrics.registry
        self.shipped = Counter(
            "mapper_analytics_shipped_events",
            "Evidence events inserted into ClickHouse by the background shipper.",
            registry=registry,
        )
        self.behind = Gauge(
            "mapper_analytics_lag_events",
            "Committed evidence events not yet in ClickHouse (all tenants).",
            registry=registry,
        )
        self.last_success = Gauge(
            "mapper_analytics_last_success_timestamp_seconds",
            "Unix time of the last shipping pass that succeeded.",
            registry=registry,
        )
        self.failures = Counter(
            "mapper_analytics_failed_passes",
            "Shipping passes that failed (ClickHouse or database unavailable).",
            registry=registry,
        )

    def up(self, report: ShipReport, health: ShipperHealth) -> None:
        self.shipped.inc(report.total)
        self.behind.set(health.behind)
        self.last_success.set(health.last_success or 0)
        self._backend(True)

    def down(self) -> None:
        self.failures.inc()
        self._backend(False)

    def _backend(self, up: bool) -> None:
        if BACKEND_NAME in self.metrics.backends:
            self.metrics.set_backend(BACKEND_NAME, up)


class _FileLease:
    """This host's shipper role: a file lock taken once and held until :meth:`release`.

    Held for the life of the worker (not per pass), so one worker ships and the others stand
    by; the OS drops the lock when that worker dies, and the next one to try takes over.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        """Whether this process holds the lease (never waits)."""
        if self._handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


@contextlib.asynccontextmanager
async def _pg_lease(engine: AsyncEngine) -> AsyncIterator[bool]:
    """On PostgreSQL, a session advisory lock shared by every replica; elsewhere always held."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as connection:
        held = bool(
            await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_SHIP_LOCK})
        )
        await connection.commit()
        try:
            yield held
        finally:
            if held:
                await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_SHIP_LOCK})
                await connection.commit()
