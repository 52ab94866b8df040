"""Forms any detector may use: `a`, `a|b`, lists, `[{label, score}]`, `{label: score}`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.scales import convert_output

LABEL_KEYS = ("label", "entity_type", "type", "category", "name")
SCORE_KEYS = ("score", "confidence", "probability")
MAX_LABEL_CHARS = 200


def parse_generic(output: object, scale: str = "probability") -> list[Signal]:
    """Parse any generic form, converting scores with the pack's ``scale``."""

    def to_score(value: object) -> float:
        return convert_output(scale, value, "score")

    if isinstance(output, str):
        return _parse_label_string(output)
    if isinstance(output, list):
        return _parse_list(output, to_score)
    if isinstance(output, Mapping):
        if any(key in output for key in LABEL_KEYS):
            return [_parse_item(output, to_score)]
        return _parse_score_map(output, to_score)
    raise OutputShapeError(
        "output must be a label string, a list of labels, a list of {label, score} objects, "
        "or an object of label to score"
    )


def checked_label(value: object) -> str:
    """A vendor label must be a short non-empty string; prose is not a label."""
    if not isinstance(value, str):
        raise OutputShapeError("a label must be a string")
    label = value.strip()
    if not label:
        raise OutputShapeError("a label must not be empty")
    if len(label) > MAX_LABEL_CHARS:
        raise OutputShapeError(f"a label must be at most {MAX_LABEL_CHARS} characters")
    return label


def _parse_label_string(text: str) -> list[Signal]:
    pieces = [piece.strip() for piece in text.split("|")]
    if not any(pieces):
        raise OutputShapeError("output is an empty label string; send [] for 'no findings'")
    return [Signal(checked_label(piece)) for piece in pieces if piece]


def _parse_list(items: list[object], to_score: Callable[[object], float]) -> list[Signal]:
    signals: list[Signal] = []
    for item in items:
        if isinstance(item, str):
            signals.append(Signal(checked_label(item)))
        elif isinstance(item, Mapping):
            signals.append(_parse_item(item, to_score))
        elif isinstance(item, list):
            # Hugging Face pipelines return one list per input text.
            signals.extend(_parse_list(item, to_score))
        else:
            raise OutputShapeError("list items must be labels or {label, score} objects")
    return signals


def _parse_item(item: Mapping[str, object], to_score: Callable[[object], float]) -> Signal:
    label_key = next((key for key in LABEL_KEYS if key in item), None)
    if label_key is None:
        raise OutputShapeError(f"each object needs one of the keys {', '.join(LABEL_KEYS)}")
    score_key = next((key for key in SCORE_KEYS if key in item), None)
    score = None if score_key is None or item[score_key] is None else to_score(item[score_key])
    return Signal(
        checked_label(item[label_key]),
        score,
        start=_offset(item.get("start")),
        end=_offset(item.get("end")),
    )


def _parse_score_map(
    scores: Mapping[str, object], to_score: Callable[[object], float]
) -> list[Signal]:
    signals: list[Signal] = []
    for key, value in scores.items():
        label = checked_label(key)
        if isinstance(value, bool):
            if value:
                signals.append(Signal(label, 1.0))
            continue
        signals.append(Signal(label, to_score(value)))
    return signals


def _offset(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OutputShapeError("start and end must be non-negative integers")
    return value
