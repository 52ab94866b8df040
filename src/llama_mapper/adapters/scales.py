"""Versioned rules that put every vendor score scale on [0, 1].

A score is a statement about the detector's certainty; the rules are deliberately simple
and monotone so that a threshold on the normalized score means the same as a threshold on
the vendor's own scale. Changing any rule requires bumping ``SCORE_RULES_VERSION``.
"""

from __future__ import annotations

import math

from llama_mapper.adapters.base import OutputShapeError

SCORE_RULES_VERSION = "score-rules/1"

BEDROCK_CONFIDENCE = {"NONE": 0.0, "LOW": 0.35, "MEDIUM": 0.65, "HIGH": 0.9}
DLP_LIKELIHOOD = {
    "LIKELIHOOD_UNSPECIFIED": 0.5,
    "VERY_UNLIKELY": 0.05,
    "UNLIKELY": 0.25,
    "POSSIBLE": 0.5,
    "LIKELY": 0.75,
    "VERY_LIKELY": 0.95,
}
AZURE_MAX_SEVERITY = 7

SCALES = (
    "probability",
    "azure_severity",
    "bedrock_confidence",
    "dlp_likelihood",
    "binary",
    "llm_guard_risk",
)


def finite_number(value: object, what: str) -> float:
    """A finite float from a JSON number; booleans, NaN, infinities and huge ints refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{what} is out of range") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite")
    return number


def probability(value: object) -> float:
    """Clamp a probability-like number to [0, 1]."""
    return min(1.0, max(0.0, finite_number(value, "score")))


def azure_severity(value: object) -> float:
    """Azure AI Content Safety severity 0-7 (the 4-level output uses 0, 2, 4, 6)."""
    return min(1.0, max(0.0, finite_number(value, "severity") / AZURE_MAX_SEVERITY))


def bedrock_confidence(value: object) -> float:
    """Bedrock Guardrails filter confidence NONE/LOW/MEDIUM/HIGH."""
    if not isinstance(value, str) or value.upper() not in BEDROCK_CONFIDENCE:
        raise ValueError("confidence must be NONE, LOW, MEDIUM or HIGH")
    return BEDROCK_CONFIDENCE[value.upper()]


def dlp_likelihood(value: object) -> float:
    """Google Sensitive Data Protection likelihood enum."""
    if not isinstance(value, str) or value.upper() not in DLP_LIKELIHOOD:
        raise ValueError("likelihood must be a DLP Likelihood value")
    return DLP_LIKELIHOOD[value.upper()]


def binary(value: object) -> float:
    """Detected / not detected."""
    return 1.0 if bool(value) else 0.0


def llm_guard_risk(value: object) -> float:
    """LLM Guard risk scores run from -1 (certainly fine) to 1 (certainly risky)."""
    return min(1.0, max(0.0, finite_number(value, "risk score")))


CONVERTERS = {
    "probability": probability,
    "azure_severity": azure_severity,
    "bedrock_confidence": bedrock_confidence,
    "dlp_likelihood": dlp_likelihood,
    "binary": binary,
    "llm_guard_risk": llm_guard_risk,
}


def convert(scale: str, value: object) -> float:
    """Apply the named scale rule to a vendor value (``ValueError`` if it does not fit)."""
    return CONVERTERS[scale](value)


def convert_output(scale: str, value: object, where: str) -> float:
    """:func:`convert` for values read from detector output: a bad value is a shape error."""
    try:
        return convert(scale, value)
    except ValueError:
        raise OutputShapeError(f"{where} is not a valid {scale} value") from None
