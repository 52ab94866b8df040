"""Fine-tune both learned-tier kinds on one device and print samples/s and accuracy.

Run by ``scripts/gpu_finetune.sh`` (on the lent GPU machine, or on CPU with ``--quick``).
For each kind it trains on ``--device`` (full data, or a few examples with ``--quick``),
then times the same trainer on the CPU over ``--cpu-examples`` examples, and prints one
JSON line per run and a table:

- samples/s: training examples per second of optimizer steps (the causal kind: its LoRA
  phase; the embedding kind: examples x epochs over its training wall time);
- top-1, macro-F1, ECE: on the held-out detectors (the fixed split), when evaluated.

    python bench/finetune_bench.py --device cuda --minilm DIR [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llama_mapper.catalog import load_catalog
from llama_mapper.model.data import Splits, build_splits


def _splits(quick: bool) -> tuple[Any, Splits]:
    catalog = load_catalog()
    full = build_splits(catalog.taxonomy, catalog.packs)
    if quick:
        full = Splits(full.train[::60], full.calibration[::10], full.evaluation[::25])
    return catalog, full


def run_embedding(
    splits: Splits, catalog: Any, out: Path, minilm: Path, device: str, args: Any, limit: int | None
) -> dict[str, Any]:
    from llama_mapper.model.train import TrainConfig, train_embedding

    config = TrainConfig(
        epochs=1 if args.quick or limit else 3,
        threads=args.threads,
        device=device,
        limit=limit,
        batch_size=32,
    )
    result = train_embedding(
        splits, catalog.taxonomy, out, minilm, config, resume=False, evaluate=limit is None
    )
    examples = min(limit or len(splits.train), len(splits.train)) * config.epochs
    return _row("embedding", device, examples, result.card["training_seconds"], result.card)


def run_causal(
    splits: Splits, catalog: Any, out: Path, device: str, args: Any, limit: int | None
) -> dict[str, Any]:
    from llama_mapper.model.causal_train import CausalTrainConfig, train_causal

    quick = args.quick or limit is not None
    config = CausalTrainConfig(
        epochs=1 if quick else args.causal_epochs,
        pretrain_epochs=1 if quick else args.pretrain_epochs,
        threads=args.threads,
        device=device,
        limit=limit,
    )
    result = train_causal(
        splits, catalog.taxonomy, out, None, config, resume=False, evaluate=limit is None
    )
    timing = result.card["timing"]
    examples = min(limit or len(splits.train), len(splits.train)) * config.epochs
    return _row("causal", device, examples, timing["lora_seconds"], result.card)


def _row(kind: str, device: str, examples: int, seconds: float, card: dict[str, Any]) -> dict:
    overall = (card.get("metrics") or {}).get("overall", {})
    return {
        "kind": kind,
        "device": device,
        "examples": examples,
        "seconds": round(seconds, 1),
        "samples_per_second": round(examples / seconds, 1) if seconds else None,
        "top1": overall.get("top1_accuracy"),
        "macro_f1": overall.get("macro_f1"),
        "ece": overall.get("ece"),
        "training_seconds": card.get("training_seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--minilm", type=Path, required=True, help="all-MiniLM-L6-v2 folder")
    parser.add_argument("--quick", action="store_true", help="a few examples, one epoch")
    parser.add_argument("--cpu-examples", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--causal-epochs", type=int, default=2)
    parser.add_argument("--kinds", default="embedding,causal")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    catalog, splits = _splits(args.quick)
    out = args.out or Path(tempfile.mkdtemp(prefix="finetune-"))
    rows = []
    for kind in args.kinds.split(","):
        for device, limit in ((args.device, None), ("cpu", args.cpu_examples)):
            if device == "cpu" and args.device == "cpu" and not args.quick:
                continue  # the main run already was the CPU one
            started = time.perf_counter()
            folder = out / f"{kind}-{device}-{limit or 'full'}"
            if kind == "embedding":
                row = run_embedding(splits, catalog, folder, args.minilm, device, args, limit)
            else:
                row = run_causal(splits, catalog, folder, device, args, limit)
            row["wall_seconds"] = round(time.perf_counter() - started, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(
        f"{'kind':<10} {'device':<7} {'examples':>8} {'samples/s':>10} {'top1':>6} "
        f"{'macroF1':>8} {'ECE':>6}"
    )
    for row in rows:
        metrics = [row[k] for k in ("top1", "macro_f1", "ece")]
        shown = " ".join(f"{m:>6.3f}" if m is not None else f"{'-':>6}" for m in metrics)
        print(
            f"{row['kind']:<10} {row['device']:<7} {row['examples']:>8} "
            f"{row['samples_per_second']:>10} {shown}"
        )
    print(f"models in {out}")


if __name__ == "__main__":
    main()
