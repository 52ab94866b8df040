"""What the built-in detectors share: accepted content types and running work off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from detector_orchestration.detectors.base import DetectorError

T = TypeVar("T")

#: Plain-text formats every built-in can read as a string.
TEXT_CONTENT_TYPES = frozenset(
    {"text/plain", "text/markdown", "text/html", "text/csv", "application/json"}
)
#: Below this many characters the work is cheaper than a thread hop, so it runs inline.
INLINE_LIMIT = 2048


def check_content_type(name: str, content_type: str, accepted: frozenset[str]) -> None:
    """Refuse content types the detector cannot read (a caller mistake: not retryable)."""
    if content_type.split(";", 1)[0].strip().lower() not in accepted:
        raise DetectorError(f"{name} does not accept this content type", retryable=False)


async def run_cpu(work: Callable[[str], T], content: str) -> T:
    """Run CPU-bound ``work(content)`` in a thread unless the content is small."""
    if len(content) <= INLINE_LIMIT:
        return work(content)
    return await asyncio.to_thread(work, content)
