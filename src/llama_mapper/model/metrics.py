"""Evaluation metrics for a mapper that answers a label with a confidence. Pure Python.

``correct`` counts a prediction as right when it is any of the example's targets (a pack
may map one vendor label to several canonical labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ECE_BINS = 15
DEFAULT_COVERAGE_THRESHOLDS = (0.5, 0.7, 0.8, 0.9)


@dataclass(frozen=True, slots=True)
class Scored:
    """One evaluated example."""

    detector: str
    gold: str
    targets: tuple[str, ...]
    predicted: str
    confidence: float

    @property
    def correct(self) -> bool:
        return self.predicted in self.targets

    @property
    def effective_gold(self) -> str:
        """The target the prediction hit, else the primary one (for per-class counts)."""
        return self.predicted if self.correct else self.gold


@dataclass(frozen=True, slots=True)
class Bin:
    lower: float
    upper: float
    count: int
    accuracy: float
    confidence: float


def accuracy(rows: Sequence[Scored]) -> float:
    return sum(r.correct for r in rows) / len(rows) if rows else 0.0


def macro_f1(rows: Sequence[Scored]) -> float:
    """Mean F1 over the canonical labels that occur as gold answers."""
    classes = {r.effective_gold for r in rows}
    if not classes:
        return 0.0
    scores = []
    for label in classes:
        tp = sum(1 for r in rows if r.predicted == label and r.effective_gold == label)
        fp = sum(1 for r in rows if r.predicted == label and r.effective_gold != label)
        fn = sum(1 for r in rows if r.predicted != label and r.effective_gold == label)
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return sum(scores) / len(scores)


def reliability(rows: Sequence[Scored], bins: int = ECE_BINS) -> list[Bin]:
    """Equal-width confidence bins with their accuracy and mean confidence."""
    out = []
    for index in range(bins):
        lower, upper = index / bins, (index + 1) / bins
        inside = [
            r
            for r in rows
            if (lower < r.confidence <= upper) or (index == 0 and r.confidence == 0.0)
        ]
        if inside:
            out.append(
                Bin(
                    lower,
                    upper,
                    len(inside),
                    accuracy(inside),
                    sum(r.confidence for r in inside) / len(inside),
                )
            )
        else:
            out.append(Bin(lower, upper, 0, 0.0, 0.0))
    return out


def expected_calibration_error(rows: Sequence[Scored], bins: int = ECE_BINS) -> float:
    """Count-weighted mean gap between confidence and accuracy across bins."""
    if not rows:
        return 0.0
    return sum(b.count * abs(b.accuracy - b.confidence) for b in reliability(rows, bins)) / len(
        rows
    )


def coverage_at(rows: Sequence[Scored], threshold: float) -> tuple[float, float]:
    """Share of examples answered at ``threshold`` and the accuracy of those answers."""
    kept = [r for r in rows if r.confidence >= threshold]
    return (len(kept) / len(rows) if rows else 0.0), accuracy(kept)


def summary(
    rows: Sequence[Scored], thresholds: Sequence[float] = DEFAULT_COVERAGE_THRESHOLDS
) -> dict[str, object]:
    coverage = {}
    for threshold in thresholds:
        share, precision = coverage_at(rows, threshold)
        coverage[f"{threshold:.2f}"] = {
            "coverage": round(share, 4),
            "accuracy": round(precision, 4),
        }
    return {
        "examples": len(rows),
        "top1_accuracy": round(accuracy(rows), 4),
        "macro_f1": round(macro_f1(rows), 4),
        "ece": round(expected_calibration_error(rows), 4),
        "coverage_at_threshold": coverage,
    }
