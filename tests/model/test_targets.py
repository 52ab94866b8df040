"""Issue #6's accuracy targets, checked against the shipped model's card.

The card's metrics are what `mapper train` measured on the fixed leave-one-detector-out
evaluation set (and `mapper evaluate` reproduces them; see test_train.py). Targets the
shipped model does not meet stay visible here as strict xfails: when a better model
ships, they start passing and pytest says so.
"""

from __future__ import annotations

from typing import Any

import pytest

from llama_mapper.model.artifact import DEFAULT_MODEL_DIR, read_card


def _overall() -> dict[str, Any]:
    overall = read_card(DEFAULT_MODEL_DIR).metrics["overall"]
    assert isinstance(overall, dict)
    return overall


def test_calibration_error_is_within_target() -> None:
    assert float(_overall()["ece"]) <= 0.05


@pytest.mark.xfail(
    strict=True,
    reason="issue #6 target not met: the shipped embedding mapper's LODO top-1 is 0.852; "
    "detect-secrets' service-named labels and within-family choices, and presidio's "
    "German identifiers fail (docs/learned-tier.md, 'Where it stands')",
)
def test_top1_accuracy_meets_target() -> None:
    assert float(_overall()["top1_accuracy"]) >= 0.90


@pytest.mark.xfail(
    strict=True,
    reason="issue #6 target not met: a fivefold drop of OTHER.Unknown needs the tier to "
    "accept >= 80% of unseen labels at the default threshold 0.8; it accepts 73% "
    "(bench/model_bench.py measures the drop itself)",
)
def test_tier_accepts_enough_unseen_labels_for_a_fivefold_unknown_drop() -> None:
    at_default = _overall()["coverage_at_threshold"]["0.80"]
    assert at_default["coverage"] >= 0.80
