"""Anchoring on a schedule: a background task of the server that signs every tenant's head.

Every worker process of every replica runs one; that is safe without coordination:

* a tenant whose latest anchor already names its current head is skipped (an unchanged
  head is a no-op), and
* when two workers sign the same new head at the same moment, both write the same key
  (``anchors/<tenant>/<seq>-<hash>.json``) and the store's atomic write-once
  (``O_EXCL`` locally, ``If-None-Match`` on S3) lets exactly one succeed; the other sees
  :class:`~llama_mapper.storage.objects.ObjectExists` and counts nothing.

A random first delay spreads the workers out so they rarely even race. Tenants are
anchored one at a time, so one tenant whose chain no longer verifies (it is refused and
logged, never blessed) does not stop the others; a backend outage is logged and retried
at the next tick. Logs carry tenant ids, seqs and error messages, never event content.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

from llama_mapper.audit.anchors import AnchorError, AnchorStore, anchor_tenants, list_tenants
from llama_mapper.audit.store import EventStore
from llama_mapper.secrets import SecretError, SecretProvider
from llama_mapper.storage.objects import ObjectStoreError

logger = logging.getLogger("llama_mapper.audit.anchors")

#: The first run waits at most this long, so a frequently restarted server still anchors.
FIRST_RUN_MAX_SECONDS = 60.0


@dataclass
class AnchorRunStats:
    """What the schedule has done since start, for ``/ready`` and tests."""

    runs: int = 0
    anchored: int = 0
    #: Tenants the last run refused to anchor because their chain does not verify.
    refused: list[str] = field(default_factory=list)
    last_error: str | None = None


class AnchorScheduler:
    """Runs :func:`run_once` every ``interval`` seconds until :meth:`stop`."""

    def __init__(
        self,
        store: EventStore,
        anchors: AnchorStore,
        secrets: SecretProvider,
        interval: float,
        *,
        first_delay: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("the anchor interval must be positive (0 means: no scheduler)")
        self.store = store
        self.anchors = anchors
        self.secrets = secrets
        self.interval = interval
        first = min(interval, FIRST_RUN_MAX_SECONDS)
        # Spreading workers out is all the randomness is for.
        spread = random.uniform(0.5, 1.0)  # noqa: S311
        self.first_delay = first_delay if first_delay is not None else first * spread
        self.stats = AnchorRunStats()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name="anchor-scheduler")

    async def stop(self) -> None:
        """Stop after the current run (if any); never raises."""
        self._stopping.set()
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None

    async def _loop(self) -> None:
        delay = self.first_delay
        while not await self._sleep(delay):
            await self.run_once()
            delay = self.interval

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; ``True`` when stopped meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def run_once(self) -> int:
        """Anchor every tenant whose head moved; returns how many anchors were written."""
        self.stats.runs += 1
        written = 0
        refused: list[str] = []
        try:
            tenants = await list_tenants(self.store)
            for tenant in tenants:
                if self._stopping.is_set():
                    break
                try:
                    written += len(
                        await anchor_tenants(self.store, self.anchors, self.secrets, [tenant])
                    )
                except AnchorError as exc:
                    refused.append(tenant)
                    logger.error("anchor refused", extra={"tenant_id": tenant, "reason": str(exc)})
            self.stats.last_error = None
        except (ObjectStoreError, SecretError, OSError) as exc:
            self.stats.last_error = str(exc)
            logger.warning("anchoring failed, retried next run", extra={"reason": str(exc)})
        except Exception as exc:  # a database outage: keep the schedule alive
            self.stats.last_error = type(exc).__name__
            logger.warning(
                "anchoring failed, retried next run", extra={"reason": type(exc).__name__}
            )
        self.stats.anchored += written
        self.stats.refused = refused
        if written:
            logger.info("anchored chain heads", extra={"anchors": written})
        return written
