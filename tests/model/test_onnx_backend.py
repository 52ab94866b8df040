"""The onnxruntime backend ranks exactly as torch does, and serving picks it when it can."""

from __future__ import annotations

import pytest

from llama_mapper.model.artifact import DEFAULT_MODEL_DIR
from llama_mapper.model.evaluate import load_eval_set
from llama_mapper.model.onnx_runtime import onnx_available

from .conftest import requires_ml

pytestmark = [
    requires_ml,
    pytest.mark.skipif(not onnx_available(), reason="the onnx extra is not installed"),
]


def test_onnx_gives_torchs_answers_and_confidences() -> None:
    from llama_mapper.model.loaded import LoadedModel

    torch_model = LoadedModel.load(DEFAULT_MODEL_DIR, threads=1, backend="torch")
    onnx_model = LoadedModel.load(DEFAULT_MODEL_DIR, threads=1, backend="onnx")
    assert (torch_model.backend, onnx_model.backend) == ("torch", "onnx")
    # Batches of mixed lengths (padding) and single labels (none): both must agree.
    texts = [e.text for e in load_eval_set()[:150]]
    for batch in (texts, texts[:1], ["US_SSN"]):
        expected = torch_model.rank(batch)
        got = onnx_model.rank(batch)
        for want, have in zip(expected, got, strict=True):
            assert [name for name, _ in have] == [name for name, _ in want]
            assert [p for _, p in have] == pytest.approx([p for _, p in want], abs=1e-4)


def test_auto_backend_is_onnx_when_installed() -> None:
    from llama_mapper.model.loaded import LoadedModel

    assert LoadedModel.load(DEFAULT_MODEL_DIR, threads=1).backend == "onnx"
