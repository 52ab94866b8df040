"""NVIDIA NeMo Guardrails content safety (Llama-3.1-NemoGuard-8B-ContentSafety, Aegis 2.0).

The content-safety model answers with a JSON object: ``{"User Safety": "safe"|"unsafe",
"Response Safety": "safe"|"unsafe", "Safety Categories": "Violence, Criminal
Planning/Confessions"}``. ``Response Safety`` is absent when only a user turn was checked and
``Safety Categories`` is absent when everything is safe. The object may arrive parsed or as
the model's raw string (optionally in a Markdown code fence). If either verdict is ``unsafe``
each comma-separated category is emitted as written (codes ``S1``…``S23`` pass through
too), or ``unsafe`` when no category is given; otherwise ``safe``. Verdicts are unscored.

Strings that are not such a JSON object are left to the generic forms. The model echoes
nothing of the conversation, so there are no raw-text keys.
"""

from __future__ import annotations

import json

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.generic import checked_label
from llama_mapper.adapters.vendors._fields import JsonObject, as_object, has_key

_VERDICT_KEYS = ("User Safety", "Response Safety")
_CATEGORIES_KEY = "Safety Categories"
_FENCE = "```"


class NemoGuardrailsAdapter:
    name = "nemo-guardrails"
    raw_text_keys: frozenset[str] = frozenset()

    def parse(self, output: object) -> list[Signal] | None:
        if isinstance(output, str):
            output = _json_object(output)
        if not has_key(output, *_VERDICT_KEYS, _CATEGORIES_KEY):
            return None
        result = as_object(output, "content safety result")
        verdicts = [_verdict(result, key) for key in _VERDICT_KEYS if result.get(key) is not None]
        if not verdicts:
            raise OutputShapeError("content safety result needs 'User Safety' or 'Response Safety'")
        if "unsafe" not in verdicts:
            return [Signal("safe")]
        categories = result.get(_CATEGORIES_KEY)
        if categories is None:
            return [Signal("unsafe")]
        if not isinstance(categories, str):
            raise OutputShapeError(f"'{_CATEGORIES_KEY}' must be a comma-separated string")
        names = [name.strip() for name in categories.split(",") if name.strip()]
        return [Signal(checked_label(name)) for name in names] or [Signal("unsafe")]


def _verdict(result: JsonObject, key: str) -> str:
    value = result[key]
    if isinstance(value, str) and value.strip().lower() in ("safe", "unsafe"):
        return value.strip().lower()
    raise OutputShapeError(f"'{key}' must be safe or unsafe")


def _json_object(text: str) -> object:
    """The JSON object in a model answer, or None when the text is not one."""
    body = text.strip()
    if body.startswith(_FENCE) and body.endswith(_FENCE) and len(body) >= 2 * len(_FENCE):
        body = body[len(_FENCE) : -len(_FENCE)].removeprefix("json").strip()
    if not body.startswith("{"):
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None
