"""The one prompt the generative mapper sees, at training time and at serving time.

A fine-tuned causal model answers well only for the prompt it was tuned on, so training
(``mapper train --kind causal``), the in-process backend and the OpenAI-compatible HTTP
backend (vLLM, TGI's Messages API) all build their input here and nowhere else.

The messages are chat messages; each backend renders them with the model's own chat
template (``tokenizer.apply_chat_template`` in-process, the server's template over HTTP),
so the rendered text is identical. The list of valid labels comes first and never changes
between requests, which lets servers with prefix caching (vLLM) reuse its KV cache; the
vendor's detector and label come last. The answer is exactly one canonical label name
and nothing else: decoding is constrained to :func:`choices`, and the confidence is
computed from the answer tokens' log-probabilities, never from a number the model writes.

Pure and torch-free: the HTTP backend imports it without the ``ml`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Bumped whenever the wording changes: a model card records the version it was tuned on,
#: and serving refuses a model whose card names another.
PROMPT_VERSION = "1"

SYSTEM_HEADER = (
    "You map labels emitted by AI-safety detectors (PII scanners, secret scanners, "
    "moderation and prompt-injection classifiers) to a canonical taxonomy. "
    "Answer with exactly one label from this list and nothing else:"
)


def system_message(labels: Sequence[str]) -> str:
    """The constant part: instructions and the valid labels, one per line."""
    return SYSTEM_HEADER + "\n" + "\n".join(labels)


def user_message(detector: str, label: str) -> str:
    """The per-request part: which detector said what."""
    return f"Detector: {detector}\nLabel: {label}"


def messages(detector: str, label: str, labels: Sequence[str]) -> list[dict[str, str]]:
    """Chat messages asking for the canonical label of ``label`` from ``detector``."""
    return [
        {"role": "system", "content": system_message(labels)},
        {"role": "user", "content": user_message(detector, label)},
    ]


def training_messages(
    detector: str, label: str, labels: Sequence[str], answer: str
) -> list[dict[str, str]]:
    """:func:`messages` plus the assistant's answer: one supervised fine-tuning example."""
    return [*messages(detector, label, labels), {"role": "assistant", "content": answer}]


def choices(labels: Sequence[str]) -> list[str]:
    """What decoding may produce: the valid labels, exactly as listed in the prompt."""
    return list(labels)
