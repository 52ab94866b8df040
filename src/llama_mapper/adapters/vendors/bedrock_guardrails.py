"""Amazon Bedrock Guardrails ``ApplyGuardrail`` response.

The response is ``{"action", "actionReason", "outputs": [{"text"}], "assessments": [{
"topicPolicy", "contentPolicy", "wordPolicy", "sensitiveInformationPolicy",
"contextualGroundingPolicy", "automatedReasoningPolicy", "invocationMetrics"}],
"usage", "guardrailCoverage"}``. A single assessment object is accepted too. Per policy:

- ``contentPolicy.filters[]`` ``{type, confidence, filterStrength, action, detected}``: the
  filter ``type`` scored by ``confidence`` (scale ``bedrock_confidence``). ``filterStrength``
  and ``detected`` (confidence measured against that strength) are the guardrail's own
  threshold and are ignored: the pack's threshold applies to the confidence instead. A
  ``NONE`` confidence is no finding and is skipped.
- ``topicPolicy.topics[]`` ``{name, type: DENY, action, detected}``: ``DENIED_TOPIC``.
- ``wordPolicy.customWords[]`` ``{match, action, detected}``: ``CUSTOM_WORD``;
  ``wordPolicy.managedWordLists[]`` ``{match, type: PROFANITY, ...}``: its ``type``.
- ``sensitiveInformationPolicy.piiEntities[]`` ``{match, type, action, detected}``: the PII
  ``type``; ``regexes[]`` ``{name, match, regex, action, detected}``: ``CUSTOM_REGEX``.
- ``contextualGroundingPolicy.filters[]`` ``{type, threshold, score, action, detected}``:
  ``GROUNDING`` or ``RELEVANCE`` when it failed (``detected``, or when that is absent,
  ``score < threshold``), scored ``1 - score`` because a low grounding score is the risk.

Topic, word, PII and regex findings carry no confidence: they are listed only when matched, so
they score 1.0, unless ``detected`` is ``false`` (detect mode listing a non-match). The
``automatedReasoningPolicy`` findings have no label in the contract and are not read.
Raw-text keys: ``match`` (the matched word or PII), ``text`` (``outputs[].text``, the masked
or blocked message, which may contain the rest of the user's content, and the automated
reasoning input-text references) and ``naturalLanguage`` (automated reasoning's restatement
of the user's claims).
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.vendors._fields import (
    JsonObject,
    as_object,
    has_key,
    label_field,
    list_field,
    optional_bool,
    optional_list,
    optional_object,
    required,
    scaled,
)

_POLICIES = (
    "topicPolicy",
    "contentPolicy",
    "wordPolicy",
    "sensitiveInformationPolicy",
    "contextualGroundingPolicy",
)


class BedrockGuardrailsAdapter:
    name = "bedrock-guardrails"
    raw_text_keys = frozenset({"match", "text", "naturalLanguage"})

    def parse(self, output: object) -> list[Signal] | None:
        if has_key(output, *_POLICIES):
            return _assessment(as_object(output, "guardrail assessment"))
        if not has_key(output, "assessments"):
            return None
        response = as_object(output, "ApplyGuardrail response")
        signals: list[Signal] = []
        for item in list_field(response, "assessments", "ApplyGuardrail response"):
            signals.extend(_assessment(as_object(item, "each assessment")))
        return signals


def _assessment(assessment: JsonObject) -> list[Signal]:
    return [
        *_content_filters(assessment),
        *_findings(assessment, "topicPolicy", "topics", "DENIED_TOPIC"),
        *_findings(assessment, "wordPolicy", "customWords", "CUSTOM_WORD"),
        *_findings(assessment, "wordPolicy", "managedWordLists", "PROFANITY", typed=True),
        *_findings(assessment, "sensitiveInformationPolicy", "piiEntities", None, typed=True),
        *_findings(assessment, "sensitiveInformationPolicy", "regexes", "CUSTOM_REGEX"),
        *_grounding(assessment),
    ]


def _policy_items(assessment: JsonObject, policy: str, key: str) -> list[JsonObject]:
    body = optional_object(assessment, policy, "assessment")
    if body is None:
        return []
    where = f"{policy}.{key}"
    return [as_object(item, f"{where} item") for item in optional_list(body, key, policy)]


def _content_filters(assessment: JsonObject) -> list[Signal]:
    where = "contentPolicy.filters item"
    signals: list[Signal] = []
    for item in _policy_items(assessment, "contentPolicy", "filters"):
        label = label_field(item, "type", where)
        confidence = scaled("bedrock_confidence", required(item, "confidence", where), where)
        if confidence > 0.0:
            signals.append(Signal(label, confidence))
    return signals


def _findings(
    assessment: JsonObject, policy: str, key: str, label: str | None, *, typed: bool = False
) -> list[Signal]:
    """Matches without a confidence: 1.0 each, skipping those marked ``detected: false``.

    The label is ``label``; with ``typed`` the item's ``type`` is the label when present
    (required when ``label`` is None).
    """
    where = f"{policy}.{key} item"
    signals: list[Signal] = []
    for item in _policy_items(assessment, policy, key):
        if optional_bool(item, "detected", where) is False:
            continue
        if label is None or (typed and item.get("type") is not None):
            signals.append(Signal(label_field(item, "type", where), 1.0))
        else:
            signals.append(Signal(label, 1.0))
    return signals


def _grounding(assessment: JsonObject) -> list[Signal]:
    where = "contextualGroundingPolicy.filters item"
    signals: list[Signal] = []
    for item in _policy_items(assessment, "contextualGroundingPolicy", "filters"):
        label = label_field(item, "type", where)
        score = scaled("probability", required(item, "score", where), f"{where}.score")
        threshold = scaled("probability", required(item, "threshold", where), f"{where}.threshold")
        detected = optional_bool(item, "detected", where)
        if detected is True or (detected is None and score < threshold):
            signals.append(Signal(label, 1.0 - score))
    return signals
