"""Protect AI LLM Guard.

Two shapes carry the same per-scanner verdicts:

- the library: ``scan_prompt``/``scan_output`` return ``(sanitized, results_valid,
  results_score)``, forwarded as ``{"results_valid": {Scanner: bool}, "results_score":
  {Scanner: float}}``. Every scanner whose ``results_valid`` is ``false`` is emitted, scored by
  its risk score (unscored if the score is missing).
- the LLM Guard API (``POST /scan/prompt``, ``/analyze/prompt``, ``/scan/output``,
  ``/analyze/output``): ``{"is_valid": bool, "scanners": {Scanner: float},
  "sanitized_prompt"|"sanitized_output"}``. It does not say which scanner failed, only the
  risk scores, so when ``is_valid`` is ``false`` the scanners with a positive risk score are
  emitted (the failures, as in LLM Guard's own API client example); when it is ``true``
  nothing is.

Risk scores come from ``llm_guard.util.calculate_risk_score``: -1…1 since 0.3.16, negative
below the scanner's threshold and positive above it (scale ``llm_guard_risk``). A scanner that
fails just above its threshold can round to 0.0 and is then missed by the API shape; the
library shape has no such gap. Labels are the scanner class names. Raw-text keys are the
echoed and sanitized texts: ``prompt``, ``output``, ``sanitized_prompt``, ``sanitized_output``.
"""

from __future__ import annotations

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.generic import checked_label
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    bool_field,
    has_key,
    number,
    object_field,
    optional_object,
    scaled,
)


class LlmGuardAdapter:
    name = "llm-guard"
    raw_text_keys = frozenset({"prompt", "output", "sanitized_prompt", "sanitized_output"})

    def parse(self, output: object) -> list[Signal] | None:
        if has_key(output, "results_valid"):
            return _library(as_object(output, "LLM Guard results"))
        if has_key(output, "is_valid", "scanners"):
            return _api(as_object(output, "LLM Guard API response"))
        return None


def _library(results: JsonObject) -> list[Signal]:
    where = "LLM Guard results"
    valid = object_field(results, "results_valid", where)
    scores = optional_object(results, "results_score", where) or {}
    signals: list[Signal] = []
    for scanner, passed in valid.items():
        if not isinstance(passed, bool):
            raise OutputShapeError(f"{where}.results_valid values must be true or false")
        if passed:
            continue
        score = scores.get(scanner)
        risk = None if score is None else scaled("llm_guard_risk", score, f"{where} score")
        signals.append(Signal(checked_label(scanner), risk))
    return signals


def _api(response: JsonObject) -> list[Signal]:
    where = "LLM Guard API response"
    is_valid = bool_field(response, "is_valid", where)
    scanners = object_field(response, "scanners", where)
    signals: list[Signal] = []
    for scanner, score in scanners.items():
        label = checked_label(scanner)
        risk = number(score, f"{where}.scanners value")
        if not is_valid and risk > 0:
            signals.append(Signal(label, scaled("llm_guard_risk", risk, f"{where} score")))
    return signals
