"""Learned tier on CPU: latency per label and how many unknowns it removes.

Prints:
1. p50/p95 latency of the tier per uncached label (one model call each; wall time and the
   process's CPU time, which a loaded machine does not inflate) and per cached label (the
   memo), on the labels of the fixed leave-detectors-out evaluation set;
2. the share of OTHER.Unknown answers on labels outside every pack: each evaluation
   example is mapped as coming from a detector without a pack (so only the taxonomy's
   names and aliases, then the model, can map it), rules alone against rules + tier at
   the configured learned_threshold; with the accuracy of what the tier accepted.

Targets (issue #6): p95 <= 15 ms uncached, <= 0.05 ms cached; unknown share at least
fivefold lower with the tier.
Usage: python bench/model_bench.py [--threads 1] [--uncached 300] [--model DIR (either kind)]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from llama_mapper.adapters import default_registry
from llama_mapper.adapters.base import Signal
from llama_mapper.catalog import load_catalog
from llama_mapper.mapping.engine import MappingEngine
from llama_mapper.model.artifact import CAUSAL, DEFAULT_MODEL_DIR, read_card
from llama_mapper.model.causal_tier import CausalTier
from llama_mapper.model.data import Example
from llama_mapper.model.evaluate import load_eval_set
from llama_mapper.model.tier import EmbeddingTier, MemoTier
from llama_mapper.packs.model import PackSet
from llama_mapper.taxonomy.model import UNKNOWN
from llama_mapper.taxonomy.normalize import normalize_label

NO_PACK = "bench-unseen-vendor"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def make_tier(folder: Path, threads: int) -> MemoTier[Any]:
    """The tier serving would build for ``folder`` (its card's kind decides)."""
    kind = CausalTier if read_card(folder).kind == CAUSAL else EmbeddingTier
    return kind(folder, threads=threads)


def latency(tier: MemoTier[Any], labels: list[str]) -> None:
    tier.predict("warm-up", "warm up label")
    uncached = []
    cpu = []
    for index, label in enumerate(labels):
        started, started_cpu = time.perf_counter(), time.process_time()
        tier.predict(f"bench-{index}", label)
        uncached.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    cached = []
    for _ in range(5):
        for index, label in enumerate(labels):
            started = time.perf_counter()
            tier.predict(f"bench-{index}", label)
            cached.append((time.perf_counter() - started) * 1000)
    print(
        f"uncached label: p50 {statistics.median(uncached):.2f} ms, "
        f"p95 {percentile(uncached, 0.95):.2f} ms (n={len(uncached)})"
    )
    # CPU time does not grow with other processes' load: what an idle core would take.
    print(
        f"uncached label, CPU time: p50 {statistics.median(cpu):.2f} ms, "
        f"p95 {percentile(cpu, 0.95):.2f} ms"
    )
    print(
        f"cached label:   p50 {statistics.median(cached) * 1000:.2f} us, "
        f"p95 {percentile(cached, 0.95) * 1000:.2f} us (n={len(cached)})"
    )


def unknown_share(tier: MemoTier[Any], examples: tuple[Example, ...], threshold: float) -> None:
    catalog = load_catalog()
    every_pack_key = {normalize_label(k) for pack in catalog.packs for k in pack.maps}
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
            if UNKNOWN in rules.map_signals(NO_PACK, signal).labels:
                unknown["rules"] += 1
            result = learned.map_signals(NO_PACK, signal)
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
    args = parser.parse_args()
    started = time.perf_counter()
    tier = make_tier(args.model, args.threads)
    tier.load()
    print(
        f"{tier.version}: loaded in {time.perf_counter() - started:.1f} s, "
        f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f}"
    )
    examples = load_eval_set()
    latency(tier, [e.text for e in examples[: args.uncached]])
    unknown_share(make_tier(args.model, args.threads), examples, args.threshold)


if __name__ == "__main__":
    main()
