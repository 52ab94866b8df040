"""Learned tier on CPU: latency per label and how many unknowns it removes.

Prints:
1. p50/p95 latency of one model call per label on each backend (torch; onnxruntime where
   the ``onnx`` extra is installed), wall time and the process's CPU time (which a loaded
   machine inflates far less), on the labels of the fixed leave-detectors-out set;
2. p50/p95 latency of the tier as serving runs it (``backend=auto``) per uncached label
   and per cached label (the memo);
3. the share of OTHER.Unknown answers on labels outside every pack: each evaluation
   example is mapped as coming from a detector without a pack (so only the taxonomy's
   names and aliases, then the model, can map it), rules alone against rules + tier at
   the configured learned_threshold; with the accuracy of what the tier accepted.
   ``--named-detectors``: each label comes from its own (held-out) detector's name instead,
   with that detector's pack removed, as a new vendor's label arrives: a model that reads
   the detector's name (trained with ``--context detector``) sees it; the rules still have no pack.

Targets (issue #6): p95 <= 15 ms uncached, <= 0.05 ms cached; unknown share at least
fivefold lower with the tier.
Usage: python bench/model_bench.py [--threads 1] [--uncached 300] [--model DIR (either kind)]
    [--skip-backends] [--named-detectors]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from llama_mapper.adapters import default_registry
from llama_mapper.adapters.base import Signal
from llama_mapper.catalog import load_catalog
from llama_mapper.mapping.engine import MappingEngine
from llama_mapper.model.artifact import CAUSAL, DEFAULT_MODEL_DIR, read_card
from llama_mapper.model.data import Example
from llama_mapper.model.evaluate import load_eval_set
from llama_mapper.model.loaded import LoadedModel
from llama_mapper.model.onnx_runtime import onnx_available
from llama_mapper.model.serving import in_process_tier
from llama_mapper.model.tier import MemoTier
from llama_mapper.packs.model import PackSet
from llama_mapper.taxonomy.model import UNKNOWN
from llama_mapper.taxonomy.normalize import normalize_label

NO_PACK = "bench-unseen-vendor"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def make_tier(folder: Path, threads: int) -> MemoTier[Any]:
    """The tier serving would build for ``folder`` (its card's kind decides)."""
    return in_process_tier(folder)(folder, threads=threads)


def timed(call: Callable[[int, str], object], labels: list[str]) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of ``call(index, label)`` for each label."""
    wall, cpu = [], []
    for index, label in enumerate(labels):
        started, started_cpu = time.perf_counter(), time.process_time()
        call(index, label)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return wall, cpu


def spread(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.2f} ms, p95 {percentile(values, 0.95):.2f} ms"


def one_call(model: LoadedModel) -> Callable[[int, str], object]:
    return lambda _, label: model.rank([label])


def backends(model_dir: Path, threads: int, labels: list[str]) -> None:
    """One ``rank`` call per label on torch and on onnxruntime: the same model and logits."""
    names: list[Literal["torch", "onnx"]] = ["torch", "onnx"] if onnx_available() else ["torch"]
    for name in names:
        started = time.perf_counter()
        model = LoadedModel.load(model_dir, threads=threads, backend=name)
        loaded = time.perf_counter() - started
        model.rank(["warm up label"])
        wall, cpu = timed(one_call(model), labels)
        print(
            f"model call on {name:5}: wall {spread(wall)}; CPU {spread(cpu)} "
            f"(n={len(labels)}, loaded in {loaded:.1f} s)"
        )
    if len(names) == 1:
        print("model call on onnx : not measured (the onnx extra is not installed)")


def latency(tier: MemoTier[Any], labels: list[str]) -> None:
    tier.predict("warm-up", "warm up label")
    uncached, cpu = timed(lambda index, label: tier.predict(f"bench-{index}", label), labels)
    cached = []
    for _ in range(5):
        for index, label in enumerate(labels):
            started = time.perf_counter()
            tier.predict(f"bench-{index}", label)
            cached.append((time.perf_counter() - started) * 1000)
    loaded = tier.load()
    backend = loaded.backend if loaded else "none"
    print(f"uncached label ({backend}): {spread(uncached)} (n={len(uncached)})")
    # CPU time grows far less with other processes' load: what an idle core would take.
    print(f"uncached label ({backend}), CPU time: {spread(cpu)}")
    print(
        f"cached label:   p50 {statistics.median(cached) * 1000:.2f} us, "
        f"p95 {percentile(cached, 0.95) * 1000:.2f} us (n={len(cached)})"
    )


def unknown_share(
    tier: MemoTier[Any], examples: tuple[Example, ...], threshold: float, named: bool
) -> None:
    catalog = load_catalog()
    every_pack_key = {normalize_label(k) for pack in catalog.packs for k in pack.maps}
    if named:
        heldout = {e.detector for e in examples}
        kept = PackSet.of(p for p in catalog.packs if p.detector not in heldout)
        catalog = dataclasses.replace(catalog, packs=kept)
    rules = MappingEngine(catalog, default_registry())
    learned = MappingEngine(catalog, default_registry(), learned=tier, learned_threshold=threshold)
    assert catalog.packs.get(NO_PACK) is None
    assert isinstance(catalog.packs, PackSet)
    for name, subset in (
        ("all evaluation labels", examples),
        (
            "labels in no pack at all",
            tuple(e for e in examples if normalize_label(e.text) not in every_pack_key),
        ),
    ):
        unknown = {"rules": 0, "tier": 0}
        accepted = correct = 0
        for example in subset:
            signal = [Signal(example.text, 1.0)]
            detector = example.detector if named else NO_PACK
            if UNKNOWN in rules.map_signals(detector, signal).labels:
                unknown["rules"] += 1
            result = learned.map_signals(detector, signal)
            if UNKNOWN in result.labels:
                unknown["tier"] += 1
            elif "model" in result.methods.values():
                accepted += 1
                correct += any(label in example.targets for label in result.labels)
        n = len(subset)
        rules_share, tier_share = unknown["rules"] / n, unknown["tier"] / n
        drop = rules_share / tier_share if tier_share else float("inf")
        print(
            f"{name} (n={n}): OTHER.Unknown rules alone {rules_share:.1%}, "
            f"with tier {tier_share:.1%} ({drop:.1f}x fewer); tier accepted {accepted}, "
            f"{correct / accepted if accepted else 0:.1%} of them right"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--uncached", type=int, default=300)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--skip-backends", action="store_true", help="no torch/onnx comparison")
    parser.add_argument(
        "--named-detectors", action="store_true", help="labels from their detectors, packless"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    tier = make_tier(args.model, args.threads)
    tier.load()
    print(
        f"{tier.version}: loaded in {time.perf_counter() - started:.1f} s, "
        f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f}"
    )
    examples = load_eval_set()
    labels = [e.text for e in examples[: args.uncached]]
    if not args.skip_backends and read_card(args.model).kind != CAUSAL:
        backends(args.model, args.threads, labels)
    latency(tier, labels)
    unknown_share(
        make_tier(args.model, args.threads), examples, args.threshold, args.named_detectors
    )


if __name__ == "__main__":
    main()
