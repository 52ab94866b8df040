"""IBM Granite Guardian 3.x verdicts.

Granite Guardian checks one risk per call (``guardian_config={"risk_name": ...}``; ``harm`` by
default) and answers ``Yes`` (the risk is present) or ``No``. IBM's examples turn that into
``label`` plus ``prob_of_risk`` (the softmax probability of ``Yes``); 3.2+ may report a
``<confidence> High|Low </confidence>`` instead. Callers forward it as ``{"risk" or
"risk_name", "label" or "result": "Yes"|"No", "probability" or "confidence"}``, or a list of
them when several risks were checked.

``Yes`` gives the risk name scored by ``probability`` (or a numeric ``confidence``; scale
``probability``). A textual confidence becomes 0.9 for ``High`` and 0.6 for ``Low``: IBM
defines no numbers for these, so the values only keep ``High`` above ``Low`` and both above a
0.5 threshold. ``No`` gives an unscored ``safe``. The verdict echoes no text, so there are no
raw-text keys.
"""

from __future__ import annotations

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    has_key,
    label_field,
    scaled,
)

_RISK_KEYS = ("risk", "risk_name")
_TEXT_CONFIDENCE = {"high": 0.9, "low": 0.6}


class GraniteGuardianAdapter:
    name = "granite-guardian"
    raw_text_keys: frozenset[str] = frozenset()

    def parse(self, output: object) -> list[Signal] | None:
        if has_key(output, *_RISK_KEYS):
            return [_verdict(as_object(output, "verdict"))]
        if isinstance(output, list) and any(has_key(item, *_RISK_KEYS) for item in output):
            return [_verdict(as_object(item, "each verdict")) for item in output]
        return None


def _verdict(verdict: JsonObject) -> Signal:
    where = "Granite Guardian verdict"
    risk = label_field(verdict, _first_key(verdict, _RISK_KEYS), where)
    answer = verdict.get(_first_key(verdict, ("label", "result")))
    if not isinstance(answer, str) or answer.strip().lower() not in ("yes", "no"):
        raise OutputShapeError(f"{where} needs 'label' or 'result' set to Yes or No")
    if answer.strip().lower() == "no":
        return Signal("safe")
    return Signal(risk, _score(verdict, where))


def _score(verdict: JsonObject, where: str) -> float | None:
    value = verdict.get("probability")
    if value is None:
        value = verdict.get("confidence")
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() not in _TEXT_CONFIDENCE:
            raise OutputShapeError(f"{where}.confidence must be a number, High or Low")
        return _TEXT_CONFIDENCE[value.strip().lower()]
    return scaled("probability", value, f"{where}.probability")


def _first_key(verdict: JsonObject, keys: tuple[str, ...]) -> str:
    """The first of ``keys`` present with a value (the first key when none is)."""
    return next((key for key in keys if verdict.get(key) is not None), keys[0])
