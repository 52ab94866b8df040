"""A trained embedding mapper loaded for inference (what serving and ``evaluate`` run).

The LoRA adapter is merged into the encoder on load: inference then costs exactly what
the base model costs, with no adapter indirection. With the ``onnx`` extra the merged model
then runs on onnxruntime (``backend="auto"``), which takes about half the CPU time per
label and gives the same logits (see :mod:`llama_mapper.model.onnx_runtime`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from llama_mapper.model.artifact import (
    HEAD,
    ModelCard,
    read_card,
    read_labels,
    read_temperature,
)
from llama_mapper.model.embedding import (
    EmbeddingMapper,
    Forward,
    batched,
    configure_threads,
    default_base_model_dir,
    load_base,
)

Ranked = list[tuple[str, float]]
#: ``auto``: onnxruntime where the ``onnx`` extra is installed, else torch.
Backend = Literal["auto", "torch", "onnx"]


@dataclass
class LoadedModel:
    card: ModelCard
    labels: tuple[str, ...]
    temperature: float
    tokenizer: Any
    model: EmbeddingMapper
    #: Tokenizers and torch modules are not documented as thread-safe: one call at a time.
    lock: threading.Lock
    #: What runs the forward pass: ``torch`` or ``onnx``.
    backend: str
    forward: Forward

    @classmethod
    def load(
        cls,
        folder: Path,
        base_dir: Path | None = None,
        threads: int | None = None,
        backend: Backend = "auto",
    ) -> LoadedModel:
        from peft import PeftModel
        from safetensors.torch import load_file

        card = read_card(folder)
        labels = read_labels(folder)
        temperature = read_temperature(folder)
        if threads is not None:
            configure_threads(threads)
        tokenizer, encoder = load_base(base_dir or default_base_model_dir())
        merged = PeftModel.from_pretrained(encoder, str(folder)).merge_and_unload()
        # Only the token states are pooled: BERT's pooler would be one more matmul per call.
        merged.pooler = None
        head = load_file(str(folder / HEAD))["prototypes"]
        if head.shape[0] != len(labels):
            from llama_mapper.model.artifact import ArtifactError

            raise ArtifactError(f"{folder}: head has {head.shape[0]} rows for {len(labels)} labels")
        model = EmbeddingMapper(merged, head)
        model.eval()
        model.requires_grad_(False)
        forward: Forward = lambda batch: model(**batch)  # noqa: E731 - the torch backend
        chosen = "torch"
        if backend != "torch":
            from llama_mapper.model.onnx_runtime import OnnxLogits, onnx_available

            if onnx_available():
                forward = OnnxLogits.from_model(model, tokenizer, torch.get_num_threads())
                chosen = "onnx"
            elif backend == "onnx":
                raise ImportError("backend 'onnx' needs the onnx extra (onnxruntime, onnx)")
        lock = threading.Lock()
        return cls(card, labels, temperature, tokenizer, model, lock, chosen, forward)

    def rank_pairs(self, pairs: Sequence[tuple[str, str]], top: int = 4) -> list[Ranked]:
        """:meth:`rank` for ``(detector, label)`` pairs; the name is read if the card says so."""
        detectors = [detector for detector, _ in pairs] if self.card.uses_detector else None
        return self.rank([label for _, label in pairs], top, detectors)

    def rank(
        self, texts: Sequence[str], top: int = 4, detectors: Sequence[str | None] | None = None
    ) -> list[Ranked]:
        """The ``top`` canonical labels for each text with calibrated probabilities."""
        if not texts:
            return []
        with self.lock, torch.inference_mode():
            logits = batched(self.forward, self.tokenizer, texts, detectors=detectors)
            probabilities = torch.softmax(logits / self.temperature, dim=-1)
            values, indices = probabilities.topk(min(top, len(self.labels)), dim=-1)
        return [
            [
                (self.labels[i], float(v))
                for v, i in zip(row_values.tolist(), row_indices.tolist(), strict=True)
            ]
            for row_values, row_indices in zip(values, indices, strict=True)
        ]
