"""Probing detectors: one call each with a fixed text, the outcome recorded in the registry.

Shared by ``orch registry health`` and ``POST /detectors/health`` so both judge health the
same way. The probe text is fixed and harmless: user content is never used to probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from detector_orchestration.detectors.base import Detector, DetectorError
from detector_orchestration.registry.catalog import DetectorCatalog
from detector_orchestration.registry.model import Health
from detector_orchestration.registry.store import RegistryStore

PROBE_TEXT = "orch health probe"


async def warm_up(detector: Detector) -> None:
    """Load a built-in that blocks until its engine is loaded (``blocks_until_loaded``,
    presidio) first, in a thread: the probe is about whether the detector answers, not how
    long a cold process takes to load it. prompt-injection answers on heuristics while its
    model loads, so it is probed as it is."""
    load = getattr(detector, "warm_up", None)
    if getattr(detector, "blocks_until_loaded", False) and callable(load):
        with contextlib.suppress(DetectorError):  # the probe reports the detector as it is
            await asyncio.to_thread(load)


async def probe_all(catalog: DetectorCatalog, registry: RegistryStore) -> list[dict[str, Any]]:
    """One row per available detector; registered ones get their health recorded."""
    available = await catalog.current()
    rows: list[dict[str, Any]] = []
    for name in sorted(available):
        entry = available[name]
        await warm_up(entry.detector)
        started = time.perf_counter()
        error: str | None = None
        try:
            async with asyncio.timeout(entry.timeout_s):
                await entry.detector.detect(PROBE_TEXT, "text/plain")
        except TimeoutError:
            error = "timed out"
        except DetectorError as exc:
            error = str(exc)  # detector errors never quote content or response bodies
        health: Health = "healthy" if error is None else "unhealthy"
        if entry.source == "registry":
            await registry.set_health(name, health)
        rows.append(
            {
                "name": name,
                "source": entry.source,
                "version": entry.detector.version,  # after the probe: the mode it ran in
                "health": health,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                "error": error,
            }
        )
    return rows
