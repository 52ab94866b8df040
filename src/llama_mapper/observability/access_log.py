"""One structured line per mapping, with metadata only.

What a line may hold is decided here, not at call sites: ids, route, status, detector,
canonical labels, counts and timings. Vendor labels the mapper could not map are added
only when privacy mode is off (they are label-shaped, but still the client's vocabulary).
Request content never reaches this function.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

logger = logging.getLogger("llama_mapper.access")


def log_mapping(
    *,
    route: str,
    request_id: str,
    status: int,
    duration_ms: float,
    privacy_mode: bool,
    response: Mapping[str, Any] | None = None,
    error_code: str | None = None,
    items: int | None = None,
) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    record: dict[str, Any] = {
        "event": "mapping",
        "timestamp": datetime.now(UTC).isoformat(),
        "level": "info",
        "logger": logger.name,
        "route": route,
        "request_id": request_id,
        "status": status,
        "duration_ms": round(duration_ms, 3),
    }
    if error_code is not None:
        record["error_code"] = error_code
    if items is not None:
        record["items"] = items
    if response is not None:
        provenance = response["provenance"]
        record.update(
            tenant_id=provenance["tenant_id"],
            detector=provenance["detector"],
            labels=list(response["taxonomy"]),
            confidence=response["confidence"],
            unmapped=len(provenance["unmapped_labels"]),
        )
        if not privacy_mode:
            record["unmapped_labels"] = _labels(provenance["unmapped_labels"])
    # Ids bound for this request (correlation id …); all generated or validated, no content.
    for key, value in structlog.contextvars.get_contextvars().items():
        record.setdefault(key, value)
    logger.info(orjson.dumps(record).decode())


def _labels(labels: Sequence[str]) -> list[str]:
    return list(labels)[:20]
