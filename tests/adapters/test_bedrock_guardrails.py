"""Bedrock ApplyGuardrail responses, shaped like the bedrock-runtime API reference."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.bedrock_guardrails import BedrockGuardrailsAdapter

ADAPTER = BedrockGuardrailsAdapter()
EMAIL = "alice@example.com"
CARD = "4111-1111-1111-1111"

ASSESSMENT = {
    "topicPolicy": {
        "topics": [
            {"name": "Investment advice", "type": "DENY", "action": "BLOCKED", "detected": True}
        ]
    },
    "contentPolicy": {
        "filters": [
            {
                "type": "VIOLENCE",
                "confidence": "HIGH",
                "filterStrength": "HIGH",
                "action": "BLOCKED",
                "detected": True,
            },
            {
                "type": "PROMPT_ATTACK",
                "confidence": "LOW",
                "filterStrength": "MEDIUM",
                "action": "NONE",
                "detected": False,
            },
            {"type": "HATE", "confidence": "NONE", "filterStrength": "HIGH", "action": "NONE"},
        ]
    },
    "wordPolicy": {
        "customWords": [{"match": "project-titan", "action": "BLOCKED", "detected": True}],
        "managedWordLists": [
            {"match": "damn", "type": "PROFANITY", "action": "BLOCKED", "detected": True}
        ],
    },
    "sensitiveInformationPolicy": {
        "piiEntities": [
            {"match": EMAIL, "type": "EMAIL", "action": "ANONYMIZED", "detected": True},
            {"match": CARD, "type": "CREDIT_DEBIT_CARD_NUMBER", "action": "BLOCKED"},
            {"match": "555-0100", "type": "PHONE", "action": "NONE", "detected": False},
        ],
        "regexes": [
            {
                "name": "employee-id",
                "match": "EMP-4111",
                "regex": "EMP-\\d{4}",
                "action": "BLOCKED",
                "detected": True,
            }
        ],
    },
    "contextualGroundingPolicy": {
        "filters": [
            {
                "type": "GROUNDING",
                "threshold": 0.75,
                "score": 0.38,
                "action": "BLOCKED",
                "detected": True,
            },
            {
                "type": "RELEVANCE",
                "threshold": 0.5,
                "score": 0.9,
                "action": "NONE",
                "detected": False,
            },
        ]
    },
    "invocationMetrics": {
        "guardrailProcessingLatency": 245,
        "usage": {"topicPolicyUnits": 1, "contentPolicyUnits": 1},
        "guardrailCoverage": {"textCharacters": {"guarded": 72, "total": 72}},
    },
}
RESPONSE = {
    "usage": {
        "topicPolicyUnits": 1,
        "contentPolicyUnits": 1,
        "wordPolicyUnits": 1,
        "sensitiveInformationPolicyUnits": 1,
        "sensitiveInformationPolicyFreeUnits": 0,
        "contextualGroundingPolicyUnits": 1,
    },
    "action": "GUARDRAIL_INTERVENED",
    "actionReason": "Guardrail blocked.",
    "outputs": [{"text": f"Sorry, I can't help. Your {CARD} was masked, {{EMAIL}}."}],
    "assessments": [ASSESSMENT],
    "guardrailCoverage": {"textCharacters": {"guarded": 72, "total": 72}},
}


def test_every_policy_type_is_emitted_with_its_label_and_scale():
    signals = ADAPTER.parse(RESPONSE)
    assert signals == [
        Signal("VIOLENCE", 0.9),
        Signal("PROMPT_ATTACK", 0.35),
        Signal("DENIED_TOPIC", 1.0),
        Signal("CUSTOM_WORD", 1.0),
        Signal("PROFANITY", 1.0),
        Signal("EMAIL", 1.0),
        Signal("CREDIT_DEBIT_CARD_NUMBER", 1.0),
        Signal("CUSTOM_REGEX", 1.0),
        Signal("GROUNDING", pytest.approx(0.62)),
    ]


def test_matched_text_never_reaches_the_signals():
    text = repr(ADAPTER.parse(RESPONSE))
    for raw in (EMAIL, CARD, "project-titan", "EMP-4111", "Investment advice", "damn"):
        assert raw not in text
    assert {"match", "text"} <= ADAPTER.raw_text_keys


def test_a_single_assessment_is_accepted():
    assert ADAPTER.parse({"topicPolicy": ASSESSMENT["topicPolicy"]}) == [
        Signal("DENIED_TOPIC", 1.0)
    ]


def test_no_intervention_means_no_signals():
    response = {"action": "NONE", "outputs": [], "assessments": [{"invocationMetrics": {}}]}
    assert ADAPTER.parse(response) == []


def test_grounding_without_detected_compares_score_and_threshold():
    def grounding(score: float) -> dict[str, object]:
        item = {"type": "RELEVANCE", "threshold": 0.5, "score": score, "action": "BLOCKED"}
        return {"contextualGroundingPolicy": {"filters": [item]}}

    assert ADAPTER.parse(grounding(0.2)) == [Signal("RELEVANCE", pytest.approx(0.8))]
    assert ADAPTER.parse(grounding(0.7)) == []


@pytest.mark.parametrize("output", ["HATE", ["VIOLENCE"], {"VIOLENCE": 0.9}, [{"type": "EMAIL"}]])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "assessment",
    [
        {"contentPolicy": {"filters": [{"type": "HATE", "confidence": EMAIL}]}},
        {"contentPolicy": {"filters": [{"type": "HATE"}]}},
        {"contentPolicy": {"filters": EMAIL}},
        {"sensitiveInformationPolicy": {"piiEntities": [{"match": EMAIL, "action": "BLOCKED"}]}},
        {
            "sensitiveInformationPolicy": {
                "piiEntities": [{"match": EMAIL, "type": "EMAIL", "detected": EMAIL}]
            }
        },
        {"contextualGroundingPolicy": {"filters": [{"type": "GROUNDING", "score": 0.1}]}},
        {"wordPolicy": [EMAIL]},
    ],
)
def test_malformed_assessments_raise_without_echoing_values(assessment):
    for output in (assessment, {"assessments": [assessment]}):
        with pytest.raises(OutputShapeError) as error:
            ADAPTER.parse(output)
        assert EMAIL not in str(error.value)


def test_assessments_must_be_a_list_of_objects():
    for output in ({"assessments": EMAIL}, {"assessments": [EMAIL]}):
        with pytest.raises(OutputShapeError) as error:
            ADAPTER.parse(output)
        assert EMAIL not in str(error.value)
