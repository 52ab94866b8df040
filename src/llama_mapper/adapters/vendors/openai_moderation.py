"""OpenAI Moderation API (``POST /v1/moderations``, ``omni-moderation-latest``).

The response is ``{"id", "model", "results": [{"flagged", "categories",
"category_scores", "category_applied_input_types"}]}`` with one result per input. Every
category in ``category_scores`` is emitted with its score (scale ``probability``): OpenAI's
own ``flagged`` booleans use OpenAI's thresholds, while the detector pack's thresholds are the
ones that apply here. Only when a caller forwards ``categories`` without scores are the
``true`` ones emitted, unscored. A null score (legacy models lack the ``illicit``
categories) is skipped. Category keys pass through as written (``self-harm/intent``; the SDK's
``model_dump()`` spelling ``self_harm_intent`` normalizes to the same pack key).

A single result object (``{"categories", "category_scores"}``) is accepted too. The response
never echoes the input, so there are no raw-text keys.
"""

from __future__ import annotations

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.generic import checked_label
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    has_key,
    list_field,
    optional_object,
    scaled,
)

_RESULT_KEYS = ("categories", "category_scores")


class OpenAIModerationAdapter:
    name = "openai-moderation"
    raw_text_keys: frozenset[str] = frozenset()

    def parse(self, output: object) -> list[Signal] | None:
        if has_key(output, *_RESULT_KEYS):
            return _parse_result(as_object(output, "moderation result"))
        if not has_key(output, "results"):
            return None
        response = as_object(output, "moderation response")
        signals: list[Signal] = []
        for item in list_field(response, "results", "moderation response"):
            signals.extend(_parse_result(as_object(item, "each moderation result")))
        return signals


def _parse_result(result: JsonObject) -> list[Signal]:
    where = "moderation result"
    scores = optional_object(result, "category_scores", where)
    if scores is not None:
        return [
            Signal(checked_label(category), scaled("probability", score, f"{where} score"))
            for category, score in scores.items()
            if score is not None
        ]
    categories = optional_object(result, "categories", where)
    if categories is None:
        raise OutputShapeError(f"{where} needs 'category_scores' or 'categories'")
    signals: list[Signal] = []
    for category, flagged in categories.items():
        if flagged is not None and not isinstance(flagged, bool):
            raise OutputShapeError(f"{where}.categories values must be true or false")
        if flagged:
            signals.append(Signal(checked_label(category)))
    return signals
