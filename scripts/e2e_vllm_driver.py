"""Map vendor labels through the mapper's OpenAI-compatible backend against a running vLLM.

``scripts/e2e_vllm.sh`` trains the product's generative mapper (``mapper train --kind
causal``), merges it (``mapper model export-merged``), serves the merged folder and runs
this against it, with ``learned.model_dir`` pointing at that same folder (its card, all
the taxonomy's labels and its calibration). It prints, for a few labels the
rules do not know, the answer, its confidence (from the token logprobs), how the engine
used it and the latency; then the same question unguided and guided (to show vLLM's
``structured_outputs`` in effect), the JSON mode, and a deliberately impossible timeout
(the ``model_timeout`` fallback).

``python scripts/e2e_vllm_driver.py --url http://127.0.0.1:8765 --model-dir DIR``
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import httpx

from llama_mapper.adapters.registry import default_registry
from llama_mapper.catalog import load_catalog
from llama_mapper.config.settings import LearnedHttpSettings, LearnedSettings, SecretsSettings
from llama_mapper.mapping.engine import MappingEngine
from llama_mapper.mapping.learned import Fallback, Prediction
from llama_mapper.model import openai_wire
from llama_mapper.model.artifact import read_card, read_labels
from llama_mapper.model.causal_tier import CausalTier
from llama_mapper.model.data import build_splits
from llama_mapper.model.http_tier import HttpTier
from llama_mapper.model.serving import http_tier

DETECTOR = "acme-new-scanner"  # no pack: only the taxonomy's names/aliases, then the model
SHOWN = 16


def unknown_to_rules(engine: MappingEngine, labels: tuple[str, ...]) -> list[tuple[str, str]]:
    """(vendor label, expected) pairs of the held-out detectors that no rule maps."""
    catalog = engine.catalog
    splits = build_splits(catalog.taxonomy, catalog.packs)
    rules = MappingEngine(catalog, default_registry())
    out: list[tuple[str, str]] = []
    for example in (*splits.evaluation, *splits.calibration):
        if example.label not in labels or any(text == example.text for text, _ in out):
            continue
        result = rules.map_signals(DETECTOR, rules.parse(DETECTOR, example.text))
        if result.labels == ("OTHER.Unknown",):
            out.append((example.text, example.label))
    random.Random(0).shuffle(out)  # noqa: S311 - a fixed demo sample
    return out[:SHOWN]


def tier(url: str, model_dir: Path, guided: str, timeout: float = 30.0) -> HttpTier:
    settings = LearnedSettings(
        enabled=True,
        backend="openai",
        model_dir=model_dir,
        http=LearnedHttpSettings(url=url, guided=guided, timeout_seconds=timeout),  # type: ignore[arg-type]
    )
    return http_tier(settings, SecretsSettings())


def in_process(adapter_dir: Path | None) -> CausalTier | None:
    """The same model before the merge, scored in process (the product's CausalTier)."""
    return CausalTier(adapter_dir) if adapter_dir is not None else None


def show_mapping(url: str, model_dir: Path, adapter_dir: Path | None) -> None:
    catalog = load_catalog()
    learned = tier(url, model_dir, "vllm-choice")
    engine = MappingEngine(catalog, default_registry(), learned=learned)
    print(f"served model: {learned.version} ({learned.status}), {len(learned.labels)} labels")
    overall = read_card(model_dir, ()).metrics.get("overall", {})
    if overall:
        print(
            f"its card (mapper evaluate, in process): top-1 {overall['top1_accuracy']:.3f}, "
            f"macro-F1 {overall['macro_f1']:.3f}, ECE {overall['ece']:.3f} on held-out "
            "detectors; a tiny base trained briefly: a weak model, this shows the wire"
        )
    local = in_process(adapter_dir)
    print("held-out vendor labels the rules do not map (detector without a pack):")
    print(
        f"{'vendor label':30} {'expected':28} {'vLLM answer':28} {'conf':>6} {'mapped':8} "
        f"{'ms':>7}  {'in process (CausalTier)' if local else ''}"
    )
    right = same = 0
    pairs = unknown_to_rules(engine, learned.labels)
    for label, expected in pairs:
        started = time.perf_counter()
        result = engine.map_signals(DETECTOR, engine.parse(DETECTOR, label))
        ms = (time.perf_counter() - started) * 1000
        raw = learned.predict(DETECTOR, label)  # memoized: the answer the engine saw
        answer = raw.label if isinstance(raw, Prediction) else repr(raw)
        confidence = raw.confidence if isinstance(raw, Prediction) else 0.0
        right += answer == expected
        mapped = "model" if "model" in result.methods.values() else "unknown"
        here = ""
        top = local.ranked(DETECTOR, label) if local is not None else []
        if top:
            best, p = top[0]
            same += best == answer
            here = f"{best} {p:.3f}"
        print(
            f"{label[:30]:30} {expected:28} {answer:28} {confidence:6.3f} {mapped:8} {ms:7.1f}  "
            f"{here}"
        )
    print(f"correct {right}/{len(pairs)}; memo: {learned.hits} hits, {learned.misses} server calls")
    if local is not None:
        print(f"vLLM (merged folder) and the in-process CausalTier agree on {same}/{len(pairs)}")
    started = time.perf_counter()
    engine.map_signals(DETECTOR, engine.parse(DETECTOR, pairs[0][0]))
    print(f"same label again (memoized): {(time.perf_counter() - started) * 1000:.2f} ms")


def show_guided(url: str, model_dir: Path) -> None:
    labels = read_labels(model_dir)
    served = read_card(model_dir, ()).version
    odd = "zq wobble frn"  # nothing like a training label
    with httpx.Client(base_url=url, timeout=60) as client:
        for guided in ("none", "vllm-choice", "vllm-json"):
            body = openai_wire.request_body(
                served, DETECTOR, odd, labels, guided=guided, max_tokens=24,
                top_logprobs=2,
            )  # fmt: skip
            data = client.post("/v1/chat/completions", json=body).json()
            content = data["choices"][0]["message"]["content"]
            try:
                answer = openai_wire.parse_answer(data, labels, guided)  # type: ignore[arg-type]
                verdict = f"valid: {answer.label} p={openai_wire.calibrated(answer.logprob, 1):.3f}"
            except openai_wire.WireError as exc:
                verdict = f"dropped ({exc})"
            extra = {k: v for k, v in body.items() if k in ("structured_outputs",)}
            shown = str(extra)[:70] + ("..." if len(str(extra)) > 70 else "")
            print(f"guided={guided:12} sent {shown or '{}'}")
            print(f"  content={content!r:60} -> {verdict}")


def show_fallback(url: str, model_dir: Path) -> None:
    impatient = tier(url, model_dir, "vllm-choice", timeout=0.0005)
    outcome = impatient.predict(DETECTOR, "credit card number")
    print(f"timeout 0.5 ms -> {outcome!r}")
    dead = tier("http://127.0.0.1:9", model_dir, "vllm-choice")
    print(f"nothing listening -> {dead.predict(DETECTOR, 'credit card number')!r}")
    assert isinstance(outcome, Fallback)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--adapter-dir", type=Path, help="the model before the merge (compare)")
    args = parser.parse_args()
    show_mapping(args.url, args.model_dir, args.adapter_dir)
    print()
    show_guided(args.url, args.model_dir)
    print()
    show_fallback(args.url, args.model_dir)


if __name__ == "__main__":
    main()
