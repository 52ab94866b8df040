"""Lakera Guard ``POST /v2/guard`` screening response.

The response is ``{"flagged", "breakdown": [{"project_id", "policy_id", "detector_id",
"detector_type", "detected", "message_id"}], "payload": [{"start", "end", "text",
"detector_type", "labels", "message_id"}], "metadata": {"request_uuid"}, "dev_info"}``;
``breakdown`` and ``payload`` are returned only when the request asked for them.

- Every ``breakdown`` item with ``detected: true`` is one ``detector_type`` signal
  (``prompt_attack``, ``moderated_content/hate``, ``pii/email``, ``unknown_links``…) with
  score 1.0: the v2 guard endpoint gives verdicts, not confidences.
- Every ``payload`` item is the same ``detector_type`` located by ``start``/``end``
  (offsets into the screened message).
- A response with ``flagged: true`` but no breakdown says only that some detector fired:
  the label ``flagged``.

Raw-text keys: ``text`` (the payload's matched PII or profanity).
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.vendors._fields import (
    as_object,
    bool_field,
    has_key,
    label_field,
    optional_bool,
    optional_list,
    span,
)

_KEYS = ("flagged", "breakdown", "payload")


class LakeraGuardAdapter:
    name = "lakera-guard"
    raw_text_keys = frozenset({"text"})

    def parse(self, output: object) -> list[Signal] | None:
        if not has_key(output, *_KEYS) or has_key(output, "results"):
            return None
        response = as_object(output, "Lakera Guard response")
        where = "Lakera Guard response"
        signals: list[Signal] = []
        breakdown = optional_list(response, "breakdown", where)
        for item in breakdown:
            result = as_object(item, "breakdown item")
            if bool_field(result, "detected", "breakdown item"):
                signals.append(Signal(label_field(result, "detector_type", "breakdown item"), 1.0))
        for item in optional_list(response, "payload", where):
            match = as_object(item, "payload item")
            start, end = span(match, "payload item")
            label = label_field(match, "detector_type", "payload item")
            signals.append(Signal(label, 1.0, start, end))
        if not breakdown and not signals and optional_bool(response, "flagged", where):
            signals.append(Signal("flagged", 1.0))
        return signals
