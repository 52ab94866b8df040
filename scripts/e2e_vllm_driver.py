"""Map vendor labels through the mapper's OpenAI-compatible backend against a running vLLM.

``scripts/e2e_vllm.sh`` starts the server and runs this. It prints, for a few labels the
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
from llama_mapper.model.artifact import read_labels
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


def show_mapping(url: str, model_dir: Path) -> None:
    catalog = load_catalog()
    learned = tier(url, model_dir, "vllm-choice")
    engine = MappingEngine(catalog, default_registry(), learned=learned)
    print(f"served model: {learned.version} ({learned.status})")
    print("held-out vendor labels the rules do not map (detector without a pack):")
    print(f"{'vendor label':34} {'expected':24} {'answer':24} {'conf':>6} {'mapped':8} {'ms':>7}")
    right = 0
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
        print(f"{label[:34]:34} {expected:24} {answer:24} {confidence:6.3f} {mapped:8} {ms:7.1f}")
    print(f"correct {right}/{len(pairs)}; memo: {learned.hits} hits, {learned.misses} server calls")
    started = time.perf_counter()
    engine.map_signals(DETECTOR, engine.parse(DETECTOR, pairs[0][0]))
    print(f"same label again (memoized): {(time.perf_counter() - started) * 1000:.2f} ms")


def show_guided(url: str, model_dir: Path) -> None:
    labels = read_labels(model_dir)
    odd = "zq wobble frn"  # nothing like a training label
    with httpx.Client(base_url=url, timeout=60) as client:
        for guided in ("none", "vllm-choice", "vllm-json"):
            body = openai_wire.request_body(
                "causal-e2e-0", DETECTOR, odd, labels, guided=guided, max_tokens=24,
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
    args = parser.parse_args()
    show_mapping(args.url, args.model_dir)
    print()
    show_guided(args.url, args.model_dir)
    print()
    show_fallback(args.url, args.model_dir)


if __name__ == "__main__":
    main()
