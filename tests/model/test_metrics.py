"""Metrics on hand-checked cases."""

from __future__ import annotations

import pytest

from llama_mapper.model.metrics import (
    Scored,
    accuracy,
    coverage_at,
    expected_calibration_error,
    macro_f1,
    summary,
)


def row(gold: str, predicted: str, confidence: float, *also: str) -> Scored:
    return Scored("d", gold, (gold, *also), predicted, confidence)


def test_accuracy_accepts_any_target() -> None:
    rows = [row("A", "A", 0.9), row("A", "B", 0.9, "B"), row("A", "C", 0.9)]
    assert accuracy(rows) == pytest.approx(2 / 3)


def test_macro_f1_averages_per_label() -> None:
    rows = [row("A", "A", 1.0), row("A", "B", 1.0), row("B", "B", 1.0)]
    # A: tp 1, fn 1 -> F1 2/3; B: tp 1, fp 1 -> F1 2/3.
    assert macro_f1(rows) == pytest.approx(2 / 3)


def test_ece_of_perfectly_and_badly_calibrated_answers() -> None:
    calibrated = [row("A", "A", 0.75)] * 3 + [row("A", "B", 0.75)]
    assert expected_calibration_error(calibrated) == pytest.approx(0.0)
    overconfident = [row("A", "B", 0.95)] * 4
    assert expected_calibration_error(overconfident) == pytest.approx(0.95)


def test_coverage_at_threshold() -> None:
    rows = [row("A", "A", 0.95), row("A", "B", 0.85), row("A", "A", 0.4)]
    assert coverage_at(rows, 0.8) == (pytest.approx(2 / 3), 0.5)
    assert summary(rows, (0.9,))["coverage_at_threshold"] == {
        "0.90": {"coverage": 0.3333, "accuracy": 1.0}
    }
