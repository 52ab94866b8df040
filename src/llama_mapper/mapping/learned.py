"""The seam where a learned mapper plugs in after the rules.

The rules only know labels someone wrote down. A learned tier is asked only about vendor
labels the rules could not map; it must say how sure it is, and the engine accepts its
answer only at or above the configured threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class LearnedThresholds:
    """Least confidence at which a model answer is accepted: per detector, else global.

    A tenant overlay's ``mapping`` section builds its own instance, so tenants can be
    stricter (or looser) than the process default.
    """

    default: float = 0.8
    detectors: Mapping[str, float] = field(default_factory=dict)

    def threshold(self, detector: str) -> float:
        return self.detectors.get(detector, self.default)
