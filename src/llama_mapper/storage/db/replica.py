"""Route projection and report reads to a PostgreSQL read replica while it is fresh enough.

Read models and reports tolerate data a few seconds old, the chain's writers do not, so
only those reads may go to a streaming standby (``database.replica_url``). A replica that
cannot be reached, or that lags the primary by more than ``replica_max_lag_seconds``, is
skipped and the primary answers instead: a stale or dead replica costs load on the
primary, never a failed or wrong report.

Measuring lag cheaply: one probe reads the primary's ``pg_current_wal_lsn()`` and then the
replica's ``pg_last_wal_replay_lsn()``. If the replica has replayed at least up to the LSN
the primary had a moment earlier it is caught up (lag 0), whatever the clocks say; only
when it is behind is the lag taken as ``now() - pg_last_xact_replay_timestamp()`` on the
replica (the age of the newest transaction it has applied). Comparing LSNs first avoids
the classic false alarm of an idle primary, whose replica's last replayed commit grows
old although nothing is missing. The probe's result is cached for
``replica_check_seconds``, so a busy API pays at most one probe per interval, and every
probe that finds the replica unusable logs one warning (exception type or lag only: URLs
and driver messages may carry credentials).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from llama_mapper.storage.db.engine import create_engine

if TYPE_CHECKING:
    from llama_mapper.config.settings import Settings
    from llama_mapper.secrets import SecretProvider

logger = logging.getLogger("llama_mapper.storage.replica")

T = TypeVar("T")
#: Longest a probe may take before the replica counts as down for this interval.
PROBE_TIMEOUT = 1.0

_PRIMARY_LSN = text("SELECT pg_current_wal_lsn()::text")
_REPLICA_STATUS = text(
    "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS replayed, "
    "EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) AS age"
)


@dataclass(frozen=True)
class ReplicaState:
    """The outcome of one probe: may reads use the replica, and why (for ``/ready``)."""

    usable: bool
    lag_seconds: float | None
    reason: str


def lsn_value(lsn: str) -> int:
    """A PostgreSQL LSN (``"16/B374D848"``) as a comparable integer."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def replica_lag(
    primary_lsn: str, standby: bool, replayed_lsn: str | None, replay_age: float | None
) -> tuple[float, str]:
    """``(lag in seconds, how it was judged)`` from one probe's readings (pure, tested alone).

    A server that is not in recovery is no standby (a promoted replica, or a copy): it has
    no replay lag to measure and is taken as current.
    """
    if not standby:
        return 0.0, "not a standby"
    if replayed_lsn is not None and lsn_value(replayed_lsn) >= lsn_value(primary_lsn):
        return 0.0, "caught up"
    if replay_age is None:
        return math.inf, "nothing replayed yet"
    return max(0.0, float(replay_age)), "replaying"


class ReadRouter:
    """Hands out the engine projection and report queries should use (see module doc).

    Without a replica every call answers the primary, so callers need no special case.
    """

    def __init__(
        self,
        primary: AsyncEngine,
        replica: AsyncEngine | None = None,
        *,
        max_lag_seconds: float = 5.0,
        check_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_seconds = max_lag_seconds
        self.check_seconds = check_seconds
        self._clock = clock
        self._state: ReplicaState | None = None
        self._checked_at = -math.inf
        self._lock = asyncio.Lock()
        #: Probes run so far (each costs one query on each server).
        self.probes = 0

    async def state(self) -> ReplicaState | None:
        """The replica's current state (cached for ``check_seconds``); ``None`` without one."""
        if self.replica is None:
            return None
        if self._state is not None and self._clock() - self._checked_at < self.check_seconds:
            return self._state
        async with self._lock:  # concurrent requests share one probe
            if self._state is None or self._clock() - self._checked_at >= self.check_seconds:
                self._state = await self._probe(self.replica)
                self._checked_at = self._clock()
        return self._state

    async def engine(self) -> AsyncEngine:
        """The replica when it is reachable and fresh enough, else the primary."""
        state = await self.state()
        if state is not None and state.usable and self.replica is not None:
            return self.replica
        return self.primary

    async def run(self, action: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        """Run the read ``action`` on :meth:`engine`; if the replica fails mid-way (it went
        down since the last probe), mark it down and run ``action`` on the primary."""
        engine = await self.engine()
        if engine is self.primary:
            return await action(engine)
        try:
            return await action(engine)
        except (OSError, DBAPIError, TimeoutError) as exc:
            self._mark_down(exc)
            return await action(self.primary)

    def describe(self) -> str:
        """One line for ``/ready`` from the last probe (run :meth:`state` first)."""
        if self.replica is None:
            return "none (primary serves reads)"
        if self._state is None:
            return "not checked yet"
        if self._state.usable:
            return f"ok ({self._state.reason})"
        return f"bypassed, reads on the primary ({self._state.reason})"

    def _mark_down(self, exc: BaseException) -> None:
        self._state = ReplicaState(False, None, f"down ({type(exc).__name__})")
        self._checked_at = self._clock()
        logger.warning(
            "read replica failed a query (%s); reads go to the primary", type(exc).__name__
        )

    async def _probe(self, replica: AsyncEngine) -> ReplicaState:
        self.probes += 1
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                async with self.primary.connect() as connection:
                    primary_lsn = str((await connection.execute(_PRIMARY_LSN)).scalar_one())
                async with replica.connect() as connection:
                    row = (await connection.execute(_REPLICA_STATUS)).one()
        except Exception as exc:  # any failure means: do not read there this interval
            state = ReplicaState(False, None, f"down ({type(exc).__name__})")
            logger.warning("read replica unusable: %s; reads go to the primary", state.reason)
            return state
        lag, how = replica_lag(primary_lsn, bool(row.standby), row.replayed, row.age)
        if lag > self.max_lag_seconds:
            state = ReplicaState(
                False, lag, f"lagging {lag:.1f} s > {self.max_lag_seconds:g} s ({how})"
            )
            logger.warning("read replica unusable: %s; reads go to the primary", state.reason)
            return state
        return ReplicaState(True, lag, f"lag {lag:.1f} s, {how}")


def read_router(
    settings: Settings, secrets: SecretProvider | None, primary: AsyncEngine
) -> ReadRouter:
    """The router ``settings`` describe for ``primary``.

    The replica gets the primary's password secret (replicas share the primary's roles).
    A replica next to a non-PostgreSQL primary is ignored with a warning: there is no
    streaming replication of SQLite to measure.
    """
    database = settings.database
    replica: AsyncEngine | None = None
    if database.replica_url:
        if primary.dialect.name != "postgresql":
            logger.warning("database.replica_url ignored: the primary is not PostgreSQL")
        else:
            url = make_url(database.replica_url)
            secret_name = database.password_secret
            if secret_name and secrets is not None:
                url = url.set(password=secrets.get(secret_name).value)
            # A short connect timeout: a dead replica must not hold a report for a minute.
            replica = create_engine(url, connect_args={"timeout": PROBE_TIMEOUT * 2})
    return ReadRouter(
        primary,
        replica,
        max_lag_seconds=database.replica_max_lag_seconds,
        check_seconds=database.replica_check_seconds,
    )
