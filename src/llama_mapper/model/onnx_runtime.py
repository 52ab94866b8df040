"""Serve a loaded embedding mapper through onnxruntime instead of torch (optional, faster).

Why: a vendor label is a handful of tokens, so one forward pass of MiniLM is 37 small
matrix products plus glue; onnxruntime runs the same graph with its own GEMM kernels and
fused attention, layer norm and GELU in about half torch's CPU time on one core
(``bench/model_bench.py`` prints both). The merged model is exported in memory when
the model loads (a few seconds, no file is written) with the TorchScript-based exporter,
and its logits equal torch's to float rounding, so the card's metrics and calibration hold
for both backends.

Needs the ``onnx`` extra (``onnxruntime``, ``onnx``); without it serving stays on torch.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from typing import Any

import torch

from llama_mapper.model.embedding import EmbeddingMapper, tokenize

_INPUTS = ("input_ids", "attention_mask")
_OPSET = 17


def onnx_available() -> bool:
    """Whether onnxruntime and onnx can be imported (the ``onnx`` extra is installed)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


class _Logits(torch.nn.Module):
    """The mapper with positional inputs, as the exporter traces it."""

    def __init__(self, model: EmbeddingMapper) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(input_ids, attention_mask)
        return logits


def export_bytes(model: EmbeddingMapper, tokenizer: Any) -> bytes:
    """The ONNX graph of ``model`` (encoder, pooling and cosine head) with dynamic shapes."""
    sample = tokenize(tokenizer, ["social security number"])
    buffer = io.BytesIO()
    # eval(): a module in training mode would be traced with dropout in the graph.
    wrapper = _Logits(model).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about every Python branch on a shape it records as a constant;
        # the ones in BERT's mask code do not depend on the batch (equal logits are tested).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (sample["input_ids"], sample["attention_mask"]),
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter takes a file object
            input_names=list(_INPUTS),
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "logits": {0: "batch"},
            },
            opset_version=_OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


class OnnxLogits:
    """``logits(batch)`` of an exported mapper on onnxruntime's CPU provider."""

    def __init__(self, graph: bytes, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def from_model(cls, model: EmbeddingMapper, tokenizer: Any, threads: int) -> OnnxLogits:
        return cls(export_bytes(model, tokenizer), threads)

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feeds = {name: batch[name].numpy() for name in _INPUTS}
        (logits,) = self.session.run(["logits"], feeds)
        return torch.from_numpy(logits)
