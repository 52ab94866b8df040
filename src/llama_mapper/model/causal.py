"""The generative mapper: a causal LM that scores every valid label as its answer.

Decoding is constrained by construction: instead of sampling, each valid label's token
sequence (the answer exactly as training rendered it, end-of-turn token included, so a
label that is a prefix of another is not favoured) is scored teacher-forced after the
prompt, and the answer is the label with the highest sequence log-probability. The
confidence is the softmax of those log-probabilities divided by the calibration
temperature: it comes from the model's token probabilities, never from text it writes.

Cost: the prompt's first part (instructions and the label list) is the same for every
request, so its KV cache is computed once; each request adds its own few tokens, and the
label continuations run as one batch over that cache (``label_batch`` at a time).

Training uses the same pieces (:class:`PromptCodec`, :func:`forward_suffixes`), so the
tokens a model is tuned on are the tokens it is asked with.
"""

from __future__ import annotations

import copy
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llama_mapper.model import prompt
from llama_mapper.model.artifact import (
    ArtifactError,
    ModelCard,
    base_model_path,
    check_prompt_version,
    read_card,
    read_labels,
    read_temperature,
)

Ranked = list[tuple[str, float]]
# transformers 5.2x renames the argument to ``cache``; 5.17 (the GPU image) only knows the
# old name, which newer versions still accept.
warnings.filterwarnings("ignore", message=".*past_key_values.*deprecated", category=FutureWarning)
#: Label continuations scored per forward pass (bounds memory with a large base model).
LABEL_BATCH = 128


def offline_quiet() -> None:
    """Never the network, no progress bars of Hugging Face's own."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def load_causal_base(base_dir: Path, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """Tokenizer and causal LM from a local Hugging Face folder; never the network."""
    offline_quiet()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (base_dir / "config.json").is_file():
        raise ArtifactError(f"base model folder {base_dir} has no config.json")
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    if not getattr(tokenizer, "chat_template", None):
        raise ArtifactError(f"the tokenizer in {base_dir} has no chat template")
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True, dtype=dtype)
    return tokenizer, model


def common_prefix(sequences: Sequence[Sequence[int]]) -> list[int]:
    """The longest run of ids every sequence starts with."""
    if not sequences:
        return []
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for sequence in sequences[1:]:
        i = 0
        while i < length and sequence[i] == first[i]:
            i += 1
        length = i
    return list(first[:length])


@dataclass
class PromptCodec:
    """:mod:`~llama_mapper.model.prompt` rendered with the model's chat template, as ids."""

    tokenizer: Any
    labels: tuple[str, ...]
    #: ``False`` leaves out the instructions and label list: only for training the tiny
    #: base (:mod:`~llama_mapper.model.tiny`), never for tuning or serving a mapper.
    instructions: bool = True
    #: Each label's answer ids: what follows the prompt in a training text.
    answers: list[list[int]] = field(init=False)
    #: Ids every prompt starts with (instructions and label list): cached once.
    prefix: list[int] = field(init=False)

    def __post_init__(self) -> None:
        probes = [("probe-a", "first probe"), ("other-detector-b", "Second_Probe")]
        self.prefix = common_prefix([self.prompt_ids(d, t) for d, t in probes])
        detector, text = probes[0]
        self.answers = [self.answer_ids(detector, text, label) for label in self.labels]

    def _messages(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        return messages if self.instructions else messages[1:]

    def prompt_text(self, detector: str, label: str) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                self._messages(prompt.messages(detector, label, self.labels)),
                tokenize=False,
                add_generation_prompt=True,
            )
        )

    def training_text(self, detector: str, label: str, answer: str) -> str:
        messages = prompt.training_messages(detector, label, self.labels, answer)
        return str(self.tokenizer.apply_chat_template(self._messages(messages), tokenize=False))

    def ids(self, text: str) -> list[int]:
        # The template writes the special tokens (BOS included) itself.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, detector: str, label: str) -> list[int]:
        return self.ids(self.prompt_text(detector, label))

    def answer_ids(self, detector: str, label: str, answer: str) -> list[int]:
        """Ids of ``answer`` as the training text continues the prompt; checks the split."""
        head = self.prompt_ids(detector, label)
        full = self.ids(self.training_text(detector, label, answer))
        if full[: len(head)] != head or len(full) == len(head):
            raise ValueError(
                "the tokenizer merges the end of the prompt with the answer; the generative "
                "mapper needs a chat template whose generation prompt ends on a token boundary"
            )
        return full[len(head) :]

    def training_ids(self, detector: str, label: str, answer: str) -> tuple[list[int], int]:
        """A training example's ids and where its answer starts (loss only after that)."""
        head = self.prompt_ids(detector, label)
        tail = self.answers[self.labels.index(answer)]
        if self.answer_ids(detector, label, answer) != tail:
            raise ValueError("an answer tokenizes differently after another request")
        return head + tail, len(head)


def prefix_cache(model: Any, ids: Sequence[int], device: torch.device) -> Any:
    """The KV cache of ``ids`` (a batch of one); differentiable when grad is on."""
    from transformers import DynamicCache

    cache = DynamicCache()
    model(input_ids=torch.tensor([list(ids)], device=device), past_key_values=cache, use_cache=True)
    return cache


def forward_suffixes(
    model: Any, cache: Any, cached: int, suffixes: Sequence[Sequence[int]], device: torch.device
) -> torch.Tensor:
    """Logits of right-padded ``suffixes`` that all continue one cached sequence.

    ``cache`` holds a batch of one of length ``cached``; it is repeated for the batch (and
    so left untouched for the next call when the caller passed a copy).
    """
    width = max(len(s) for s in suffixes)
    ids = torch.zeros(len(suffixes), width, dtype=torch.long, device=device)
    mask = torch.ones(len(suffixes), cached + width, dtype=torch.long, device=device)
    for row, suffix in enumerate(suffixes):
        ids[row, : len(suffix)] = torch.tensor(list(suffix), dtype=torch.long)
        mask[row, cached + len(suffix) :] = 0
    cache.batch_repeat_interleave(len(suffixes))
    out = model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=True)
    return out.logits  # type: ignore[no-any-return]


def sequence_logprobs(
    model: Any,
    codec: PromptCodec,
    prompt_ids: Sequence[int],
    device: torch.device,
    shared: Any | None = None,
    label_batch: int = LABEL_BATCH,
) -> torch.Tensor:
    """Log-probability of each valid label's answer ids after ``prompt_ids`` (one row).

    ``shared`` is the KV cache of ``codec.prefix`` (reused when the prompt starts with it).
    """
    from transformers import DynamicCache

    start = len(codec.prefix)
    if shared is not None and start < len(prompt_ids) and list(prompt_ids[:start]) == codec.prefix:
        cache, rest = copy.deepcopy(shared), prompt_ids[start:]
    else:
        cache, rest = DynamicCache(), prompt_ids
    out = model(
        input_ids=torch.tensor([list(rest)], device=device), past_key_values=cache, use_cache=True
    )
    first = out.logits[0, -1].float().log_softmax(dim=-1)
    scores = []
    for begin in range(0, len(codec.answers), label_batch):
        answers = codec.answers[begin : begin + label_batch]
        logits = forward_suffixes(model, copy.deepcopy(cache), len(prompt_ids), answers, device)
        logprobs = logits.float().log_softmax(dim=-1)
        for row, answer in enumerate(answers):
            total = first[answer[0]]
            if len(answer) > 1:
                following = torch.tensor(answer[1:], device=device)
                steps = torch.arange(len(answer) - 1, device=device)
                total = total + logprobs[row, steps, following].sum()
            scores.append(total)
    return torch.stack(scores).cpu()


@dataclass
class CausalModel:
    """A trained generative mapper loaded for inference (LoRA merged into the base)."""

    card: ModelCard
    labels: tuple[str, ...]
    temperature: float
    codec: PromptCodec
    model: Any
    shared: Any
    device: torch.device
    lock: threading.Lock

    @classmethod
    def load(
        cls,
        folder: Path,
        base_dir: Path | None = None,
        threads: int | None = None,
        device: str = "cpu",
    ) -> CausalModel:
        from peft import PeftModel

        from llama_mapper.model.embedding import configure_threads

        card = read_card(folder)
        check_prompt_version(card)
        labels = read_labels(folder)
        temperature = read_temperature(folder)
        if threads is not None:
            configure_threads(threads)
        tokenizer, base = load_causal_base(base_dir or base_model_path(folder, card))
        model = PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
        target = torch.device(device)
        model.to(target)
        model.eval()
        model.requires_grad_(False)
        codec = PromptCodec(tokenizer, labels)
        with torch.inference_mode():
            shared = prefix_cache(model, codec.prefix, target)
        return cls(card, labels, temperature, codec, model, shared, target, threading.Lock())

    def logprobs(self, detector: str, label: str) -> torch.Tensor:
        """Sequence log-probabilities of every valid label (the uncalibrated scores)."""
        with self.lock, torch.inference_mode():
            ids = self.codec.prompt_ids(detector, label)
            return sequence_logprobs(self.model, self.codec, ids, self.device, self.shared)

    def rank_pairs(self, pairs: Sequence[tuple[str, str]], top: int = 4) -> list[Ranked]:
        """The ``top`` labels for each ``(detector, label)`` with calibrated probabilities."""
        out = []
        for detector, label in pairs:
            probabilities = torch.softmax(self.logprobs(detector, label) / self.temperature, -1)
            values, indices = probabilities.topk(min(top, len(self.labels)))
            out.append(
                [
                    (self.labels[i], float(v))
                    for v, i in zip(values.tolist(), indices.tolist(), strict=True)
                ]
            )
        return out
