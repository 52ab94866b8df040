"""The OpenAI chat-completions wire format as the HTTP backend speaks it. Pure, no I/O.

One request asks for the canonical label of one vendor label, built from the shared prompt
(:mod:`llama_mapper.model.prompt`), greedy (``temperature: 0``), with token
log-probabilities, and constrained to the valid labels where the server can:

- ``vllm-choice``: vLLM's ``structured_outputs: {"choice": [...]}`` (vLLM >= 0.12; the
  older ``guided_choice`` field was removed there). The answer is the label itself.
- ``vllm-json``: vLLM's ``structured_outputs: {"json": schema}``; the answer is
  ``{"label": "<one of the labels>"}`` (start vLLM with
  ``--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace": true}'``).
- ``tgi-json``: TGI's Messages API grammar, ``response_format: {"type": "json", "value":
  schema}``; same answer shape.
- ``none``: unconstrained; an answer outside the labels is dropped.

The confidence is read from the log-probabilities of the tokens that spell the label
(``choices[0].logprobs.content[].logprob``), never from anything the model writes: their
sum is the log-probability of the answer, and the JSON scaffolding around it in the JSON
modes is left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from llama_mapper.model import prompt

GuidedMode = Literal["vllm-choice", "vllm-json", "tgi-json", "none"]
JSON_MODES = frozenset({"vllm-json", "tgi-json"})


class WireError(ValueError):
    """The server's answer does not have the documented shape, or names no valid label.

    The message describes the shape only: it never quotes the model's text.
    """


@dataclass(frozen=True, slots=True)
class Answer:
    label: str
    #: Sum of the log-probabilities of the tokens spelling ``label``.
    logprob: float
    tokens: int


def answer_schema(labels: Sequence[str]) -> dict[str, Any]:
    """JSON schema of the JSON modes' answer: one property, an enum of the labels."""
    return {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": prompt.choices(labels)}},
        "required": ["label"],
        "additionalProperties": False,
    }


def request_body(
    model: str,
    detector: str,
    label: str,
    labels: Sequence[str],
    *,
    guided: GuidedMode,
    max_tokens: int,
    top_logprobs: int,
) -> dict[str, Any]:
    """The ``POST /v1/chat/completions`` body for one vendor label."""
    body: dict[str, Any] = {
        "model": model,
        "messages": prompt.messages(detector, label, labels),
        "max_tokens": max_tokens,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": top_logprobs,
        "stream": False,
    }
    if guided == "vllm-choice":
        body["structured_outputs"] = {"choice": prompt.choices(labels)}
    elif guided == "vllm-json":
        # vLLM 0.32 takes disable_any_whitespace from the server's config only
        # (--structured-outputs-config '{"backend": "xgrammar", "disable_any_whitespace":
        # true}'), not per request: without
        # it a small model may spend max_tokens on whitespace before the label.
        body["structured_outputs"] = {"json": answer_schema(labels)}
    elif guided == "tgi-json":
        body["response_format"] = {"type": "json", "value": answer_schema(labels)}
    return body


def _label_span(content: str, guided: GuidedMode) -> tuple[str, int, int]:
    """The answered label and where its characters are in ``content``."""
    if guided not in JSON_MODES:
        start = len(content) - len(content.lstrip())
        label = content.strip()
        return label, start, start + len(label)
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise WireError("answer is not the JSON object that was asked for") from None
    value = data.get("label") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise WireError("answer JSON has no string 'label'")
    quoted = orjson.dumps(value).decode()
    at = content.find(quoted)
    if at < 0:
        raise WireError("answer JSON spells its label with escapes")
    return value, at + 1, at + len(quoted) - 1


def _token_logprobs(choice: dict[str, Any]) -> list[tuple[str, float]]:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        raise WireError("choices[0].logprobs.content is missing (server without logprobs?)")
    out = []
    for item in content:
        token = item.get("token") if isinstance(item, dict) else None
        value = item.get("logprob") if isinstance(item, dict) else None
        if not isinstance(token, str) or not isinstance(value, int | float):
            raise WireError("a logprobs.content entry lacks token or logprob")
        # vLLM reports -9999.0 (or -inf) for a token the grammar forced at ~zero probability.
        out.append((token, float(value) if math.isfinite(value) else -math.inf))
    return out


def parse_answer(data: object, labels: Sequence[str], guided: GuidedMode) -> Answer:
    """The label a chat-completions response answered, with its log-probability."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise WireError("response has no choices[0]")
    choice = choices[0]
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise WireError("choices[0].message.content is not a string")
    label, start, end = _label_span(content, guided)
    if label not in labels:
        raise WireError("answer is not one of the valid labels")
    tokens = _token_logprobs(choice)
    total, used, position = 0.0, 0, 0
    for token, value in tokens:
        token_start, position = position, position + len(token)
        if position > start and token_start < end:  # the token overlaps the label
            total += value
            used += 1
    if not used:
        raise WireError("logprobs tokens do not cover the answer")
    return Answer(label, total, used)


def calibrated(logprob: float, temperature: float) -> float:
    """The answer's probability, temperature-scaled as the answer against everything else.

    A server returns the log-probability of the one answer it generated, not a score for
    every label, so the card's temperature is applied to the answer's log-odds
    (``sigmoid(logit(p) / T)``): ``T = 1`` leaves ``p`` unchanged, ``T > 1`` tempers it.
    """
    p = math.exp(logprob) if logprob > -745 else 0.0
    if p >= 1.0 or p <= 0.0 or temperature == 1.0:
        return min(max(p, 0.0), 1.0)
    logit = math.log(p) - math.log1p(-p)
    return 1.0 / (1.0 + math.exp(-logit / temperature))
