"""The seam where a learned mapper plugs in after the rules.

The rules only know labels someone wrote down. A learned tier is asked only about vendor
labels the rules could not map; it must say how sure it is, and the engine accepts its
answer only at or above the configured threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float
    #: Runner-up labels with their confidences, reported in provenance when rejected.
    candidates: tuple[tuple[str, float], ...] = ()


#: Why a tier that should have answered did not: the model server was too slow
#: (``model_timeout``) or failed, refused, or answered something unusable (``model_error``).
FallbackReason = Literal["model_timeout", "model_error"]


@dataclass(frozen=True, slots=True)
class Fallback:
    """No answer because the model could not be asked, not because it was unsure.

    The engine maps the label as if there were no learned tier and reports the reason in
    ``provenance.model_fallback``, so a client sees a degraded answer, never an error.
    """

    reason: FallbackReason


class LearnedTier(Protocol):
    #: Model identifier reported in ``version_info.model``.
    version: str

    def predict(self, detector: str, label: str) -> Prediction | Fallback | None:
        """Best canonical label for ``label`` from ``detector``; ``None`` if unsure, a
        :class:`Fallback` if the model could not be asked."""
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
