"""The detectors a request can use right now: built-ins and registered ones, as instances.

Registered detectors are re-read from the database at most every ``refresh_seconds`` (an
admin's change on another replica shows up within that time; a change through this
process shows up at once). A record that cannot be built is reported, not fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from detector_orchestration.detectors.base import Detector
from detector_orchestration.registry.factory import (
    KINDS,
    DetectorFactory,
    FactoryContext,
    FactoryError,
    build,
)
from detector_orchestration.registry.model import DetectorRecord
from detector_orchestration.registry.store import RegistryStore

logger = logging.getLogger("detector_orchestration.registry")


@dataclass(frozen=True)
class Available:
    detector: Detector
    timeout_s: float
    retries: int
    source: str  # "builtin" | "registry"


class DetectorCatalog:
    def __init__(
        self,
        store: RegistryStore | None,
        context: FactoryContext,
        *,
        builtins: Mapping[str, Callable[[], Detector]] | None = None,
        kinds: Mapping[str, DetectorFactory] = KINDS,
        default_timeout_s: float = 1.0,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.context = context
        self.kinds = kinds
        self.default_timeout_s = default_timeout_s
        self.refresh_seconds = refresh_seconds
        self._builtins = {name: make() for name, make in (builtins or {}).items()}
        self._registered: dict[str, Available] = {}
        self._records: list[DetectorRecord] = []
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._loaded_at = None

    async def current(self) -> dict[str, Available]:
        if self._stale():
            async with self._lock:
                if self._stale():
                    await self._reload()
        merged = {
            name: Available(detector, self.default_timeout_s, 0, "builtin")
            for name, detector in self._builtins.items()
        }
        merged.update(self._registered)  # a registered detector may replace a built-in
        return merged

    def is_known(self, name: str) -> bool:
        """A built-in or registered name (safe as a metric label: operator-controlled)."""
        return name in self._builtins or name in self._registered

    def builtin_names(self) -> list[str]:
        return sorted(self._builtins)

    def builtin_rows(self) -> list[dict[str, Any]]:
        """What the registry listings say about each built-in: its version and, where the
        detector has them, its running mode and a description (``presidio`` reports
        ``nlp`` or ``regex-only`` there)."""
        rows: list[dict[str, Any]] = []
        for name in self.builtin_names():
            detector = self._builtins[name]
            row: dict[str, Any] = {
                "name": name,
                "kind": "builtin",
                "source": "builtin",
                "pack": detector.pack,
                "version": detector.version,
            }
            for extra in ("mode", "description"):
                value = getattr(detector, extra, None)
                if isinstance(value, str):
                    row[extra] = value
            rows.append(row)
        return rows

    def _stale(self) -> bool:
        if self.store is None:
            return False
        return self._loaded_at is None or time.monotonic() - self._loaded_at >= self.refresh_seconds

    async def _reload(self) -> None:
        assert self.store is not None
        records = await self.store.list()
        registered: dict[str, Available] = {}
        for record in records:
            try:
                detector = build(record, self.context, self.kinds)
            except FactoryError as exc:
                logger.warning(
                    "detector not usable", extra={"detector": record.name, "reason": str(exc)}
                )
                continue
            registered[record.name] = Available(
                detector, record.timeout_ms / 1000, record.retries, "registry"
            )
        self._registered = registered
        self._records = records
        self._loaded_at = time.monotonic()
