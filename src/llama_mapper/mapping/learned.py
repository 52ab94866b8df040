"""The seam where a learned mapper plugs in after the rules.

The rules only know labels someone wrote down. A learned tier is asked only about vendor
labels the rules could not map; it must say how sure it is, and the engine accepts its
answer only at or above the configured threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float
    #: Runner-up labels with their confidences, reported in provenance when rejected.
    candidates: tuple[tuple[str, float], ...] = ()


class LearnedTier(Protocol):
    #: Model identifier reported in ``version_info.model``.
    version: str

    def predict(self, detector: str, label: str) -> Prediction | None:
        """Best canonical label for ``label`` from ``detector``, or ``None`` if unsure."""
        ...
