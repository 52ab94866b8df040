"""How much of the leave-detectors-out set the training data already spells, and top-1 on
the rest.

Vendors share words (``CREDIT_CARD_NUMBER`` is many scanners' label), so some evaluation
labels reappear, word for word, in the training data of a model that never saw their
detector. This prints how many, and the model's top-1 on the examples whose words appear
in no training example: the part of ``lodo-1`` that only generalisation can answer.

Usage: python bench/lodo_overlap.py [--model DIR ...] (default: the shipped model)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llama_mapper.catalog import load_catalog
from llama_mapper.model.artifact import DEFAULT_MODEL_DIR
from llama_mapper.model.evaluate import load_eval_set
from llama_mapper.model.lexicon import training_splits
from llama_mapper.model.loaded import LoadedModel
from llama_mapper.model.text import label_text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, action="append", default=None)
    args = parser.parse_args()
    seen = {label_text(e.text) for e in training_splits(load_catalog()).train}
    examples = load_eval_set()
    novel = [i for i, e in enumerate(examples) if label_text(e.text) not in seen]
    print(
        f"lodo-1: {len(examples)} examples, {len(examples) - len(novel)} spelled word for word "
        f"by the current training data, {len(novel)} not"
    )
    for folder in args.model or [DEFAULT_MODEL_DIR]:
        model = LoadedModel.load(folder, threads=1, backend="torch")
        ranked = model.rank_pairs([(e.detector, e.text) for e in examples])
        right = [ranked[i][0][0] in examples[i].targets for i in range(len(examples))]
        print(
            f"{model.card.version} ({folder}): top-1 {sum(right) / len(right):.3f} on all, "
            f"{sum(right[i] for i in novel) / len(novel):.3f} on the {len(novel)} unspelled"
        )


if __name__ == "__main__":
    main()
