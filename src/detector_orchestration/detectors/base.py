"""The one contract between the orchestrator and every detector, built-in or remote.

A detector returns its vendor's *native* output: the mapper's adapters normalize it, so orch
keeps no second mapping table. Spans are reported separately (offsets and the vendor label,
never the matched text) because the orchestrator needs them for redaction and findings while
the mapper only needs labels and scores.

Timeouts, retries, circuit breaking and concurrency caps are the executor's job, not the
detector's: a detector makes one attempt and either returns or raises ``DetectorError``.
CPU-heavy built-ins run their work in a thread so they never stall the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Span:
    """Where a finding sits in the content: character offsets, never the text itself."""

    start: int
    end: int
    #: The vendor's own label for this span (``email``, ``AWSKeyDetector``...), mapped later.
    label: str
    score: float | None = None


@dataclass(frozen=True, slots=True)
class DetectorOutput:
    #: The vendor's native response shape, handed to the mapper pack named ``Detector.pack``.
    output: Any
    spans: tuple[Span, ...] = field(default=())


class DetectorError(Exception):
    """One failed attempt. ``retryable`` says whether another attempt may succeed.

    The message must never quote the content or the detector's raw text.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Detector(Protocol):
    #: Unique name in the registry, e.g. ``regex-pii``.
    name: str
    #: The mapper detector pack that understands ``DetectorOutput.output``.
    pack: str
    #: Version reported in results (``regex-pii@2026.12.0``).
    version: str
    #: MIME-like content types this detector accepts (``text/plain``...).
    content_types: frozenset[str]

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        """Analyse ``content`` once; raise ``DetectorError`` on failure."""
        ...
