"""FMS Guardrails Orchestrator Detector API (foundation-model-stack, TrustyAI detectors).

Detectors answer in three documented shapes:

- ``POST /api/v1/text/contents``: one list per input text of ``[{"start", "end", "text",
  "detection", "detection_type", "score", "evidence", "metadata"}]``;
- the generation, chat and context endpoints: a flat list of detections without spans;
- the orchestrator's standalone detection (``POST /api/v2/text/detection/content`` and
  siblings): ``{"detections": [{..., "detector_id"}]}``.

Each detection gives ``detection_type/detection`` (``pii/EmailAddress``, ``hap/has_HAP``,
``LABEL_1/single_label_classification``) scored by ``score`` (scale ``probability``), with the
span's character offsets when present. ``evidence`` and ``metadata`` are not read. Raw-text
key: ``text``, the matched span of the user's content.
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.generic import checked_label
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    has_key,
    label_field,
    list_field,
    required,
    scaled,
    span,
)

_DETECTION_KEYS = ("detection", "detection_type")


class FmsDetectorAdapter:
    name = "fms-detector"
    raw_text_keys = frozenset({"text"})

    def parse(self, output: object) -> list[Signal] | None:
        if has_key(output, "detections"):
            items = list_field(as_object(output, "response"), "detections", "response")
        elif isinstance(output, list):
            items = [
                leaf for item in output for leaf in (item if isinstance(item, list) else [item])
            ]
            if not any(has_key(item, *_DETECTION_KEYS) for item in items):
                return None
        else:
            return None
        return [_detection(as_object(item, "each detection")) for item in items]


def _detection(detection: JsonObject) -> Signal:
    where = "detection"
    kind = label_field(detection, "detection_type", where)
    name = label_field(detection, "detection", where)
    score = scaled("probability", required(detection, "score", where), f"{where}.score")
    label = checked_label(f"{kind}/{name}")
    if detection.get("start") is None and detection.get("end") is None:
        return Signal(label, score)
    start, end = span(detection, where)
    return Signal(label, score, start, end)
