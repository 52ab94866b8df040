"""Score a mapper on the fixed leave-detectors-out evaluation set and draw its reliability.

The evaluation set is a committed, versioned JSONL file (``evalsets/``) so that every
model is measured on the same examples, even after the packs change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llama_mapper.model.data import Example, from_jsonl, sha256
from llama_mapper.model.metrics import Scored, reliability, summary

EVALSETS = Path(__file__).parent / "evalsets"
EVAL_SET_VERSION = "lodo-1"
EVAL_SET = EVALSETS / f"{EVAL_SET_VERSION}.jsonl"
#: SHA-256 of the committed evaluation set: a test fails if the file drifts from it.
EVAL_SET_SHA256 = "ebe47db0ab9026dd4fde6db7bbc22c2a9d776da8e42fe68afdb2dd6345d7a516"

#: ``texts -> [[(label, confidence), ...], ...]``, best first.
Ranker = Callable[[Sequence[str]], list[list[tuple[str, float]]]]


def load_eval_set(path: Path = EVAL_SET) -> tuple[Example, ...]:
    return from_jsonl(path.read_bytes())


def eval_set_hash(path: Path = EVAL_SET) -> str:
    return sha256(path.read_bytes())


#: ``[(detector, label), ...] -> [[(label, confidence), ...], ...]``: for a mapper whose
#: input names the detector (the generative one).
PairRanker = Callable[[Sequence[tuple[str, str]]], list[list[tuple[str, float]]]]


def score(rank: Ranker, examples: Sequence[Example]) -> list[Scored]:
    return score_pairs(lambda pairs: rank([text for _, text in pairs]), examples)


def score_pairs(rank: PairRanker, examples: Sequence[Example]) -> list[Scored]:
    ranked = rank([(e.detector, e.text) for e in examples])
    return [
        Scored(e.detector, e.label, e.targets, best[0][0], best[0][1])
        for e, best in zip(examples, ranked, strict=True)
    ]


def report(rows: Sequence[Scored], thresholds: Sequence[float]) -> dict[str, Any]:
    """Overall and per held-out detector metrics."""
    detectors = sorted({r.detector for r in rows})
    return {
        "overall": summary(rows, thresholds),
        "per_detector": {
            name: summary([r for r in rows if r.detector == name], thresholds) for name in detectors
        },
    }


def plot_reliability(rows: Sequence[Scored], path: Path, title: str) -> None:
    """Reliability diagram: accuracy against confidence per bin, with bin counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = reliability(rows)
    centers = [(b.lower + b.upper) / 2 for b in bins]
    width = bins[0].upper - bins[0].lower
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    used = [b for b in bins if b.count]
    top.bar(
        [(b.lower + b.upper) / 2 for b in used],
        [b.accuracy for b in used],
        width=width * 0.9,
        alpha=0.7,
        label="accuracy",
        edgecolor="black",
    )
    top.plot(
        [b.confidence for b in used],
        [b.accuracy for b in used],
        marker="o",
        color="darkred",
        label="mean confidence vs accuracy",
    )
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.bar(centers, [b.count for b in bins], width=width * 0.9, color="steelblue")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("examples")
    bottom.set_xlim(0, 1)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
