"""Azure AI Content Safety responses, shaped like the REST reference and quickstart examples."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.azure_content_safety import AzureContentSafetyAdapter

ADAPTER = AzureContentSafetyAdapter()
SECRET = "alice@example.com"

ANALYZE = {
    "blocklistsMatch": [
        {
            "blocklistName": "customer-emails",
            "blocklistItemId": "5f1a8c2e-6a7e-4c1f-9f0a-0c6d8b8e0a11",
            "blocklistItemText": SECRET,
        }
    ],
    "categoriesAnalysis": [
        {"category": "Hate", "severity": 2},
        {"category": "SelfHarm", "severity": 0},
        {"category": "Sexual", "severity": 0},
        {"category": "Violence", "severity": 7},
    ],
}


def test_text_analyze_scores_severity_and_blocklist_hits():
    signals = ADAPTER.parse(ANALYZE)
    assert signals == [
        Signal("Hate", 2 / 7),
        Signal("SelfHarm", 0.0),
        Signal("Sexual", 0.0),
        Signal("Violence", 1.0),
        Signal("BlocklistMatch", 1.0),
    ]
    assert SECRET not in repr(signals)


def test_four_level_output_uses_the_same_scale():
    output = {"categoriesAnalysis": [{"category": "Violence", "severity": 4}]}
    assert ADAPTER.parse(output) == [Signal("Violence", 4 / 7)]


def test_the_2023_preview_shape_is_read_too():
    output = {
        "blocklistsMatchResults": [
            {
                "blocklistName": "list",
                "blockItemId": "1",
                "blockItemText": SECRET,
                "offset": 5,
                "length": 17,
            }
        ],
        "hateResult": {"category": "Hate", "severity": 0},
        "selfHarmResult": {"category": "SelfHarm", "severity": 0},
        "sexualResult": {"category": "Sexual", "severity": 2},
        "violenceResult": {"category": "Violence", "severity": 6},
    }
    signals = ADAPTER.parse(output)
    assert signals == [
        Signal("Hate", 0.0),
        Signal("SelfHarm", 0.0),
        Signal("Sexual", 2 / 7),
        Signal("Violence", 6 / 7),
        Signal("BlocklistMatch", 1.0, 5, 22),
    ]
    assert SECRET not in repr(signals)


def test_prompt_shields_emit_only_detected_attacks():
    output = {
        "userPromptAnalysis": {"attackDetected": True},
        "documentsAnalysis": [{"attackDetected": False}, {"attackDetected": True}],
    }
    assert ADAPTER.parse(output) == [Signal("UserPromptAttack", 1.0), Signal("DocumentAttack", 1.0)]
    clean = {"userPromptAnalysis": {"attackDetected": False}, "documentsAnalysis": []}
    assert ADAPTER.parse(clean) == []


def test_detect_jailbreak_preview_is_a_user_prompt_attack():
    assert ADAPTER.parse({"jailbreakAnalysis": {"detected": True}}) == [
        Signal("UserPromptAttack", 1.0)
    ]


def test_protected_material_text_and_code():
    assert ADAPTER.parse({"protectedMaterialAnalysis": {"detected": True}}) == [
        Signal("ProtectedMaterialText", 1.0)
    ]
    code = {
        "protectedMaterialAnalysis": {
            "detected": True,
            "codeCitations": [
                {"license": "NOASSERTION", "sourceUrls": ["https://github.com/example/game"]}
            ],
        }
    }
    assert ADAPTER.parse(code) == [Signal("ProtectedMaterialCode", 1.0)]
    assert ADAPTER.parse({"protectedMaterialAnalysis": {"detected": False}}) == []


def test_groundedness_emits_each_ungrounded_span_without_its_text():
    output = {
        "ungroundedDetected": True,
        "ungroundedPercentage": 0.5,
        "ungroundedDetails": [
            {
                "text": SECRET,
                "offset": {"utf8": 12, "utf16": 12, "codePoint": 12},
                "length": {"utf8": 17, "utf16": 17, "codePoint": 17},
                "reason": f"The source never mentions {SECRET}.",
            }
        ],
        "correctionText": "You will earn 10/hour.",
    }
    signals = ADAPTER.parse(output)
    assert signals == [Signal("Ungrounded", 0.5, 12, 29)]
    assert SECRET not in repr(signals)
    assert {"text", "reason", "correctionText", "blocklistItemText"} <= ADAPTER.raw_text_keys


def test_groundedness_without_details_or_percentage():
    assert ADAPTER.parse({"ungroundedDetected": True}) == [Signal("Ungrounded", 1.0)]
    assert ADAPTER.parse({"ungrounded": True, "confidenceScore": 1}) == [Signal("Ungrounded", 1.0)]
    grounded = {"ungroundedDetected": False, "ungroundedPercentage": 0, "ungroundedDetails": []}
    assert ADAPTER.parse(grounded) == []


@pytest.mark.parametrize("output", ["Hate", ["Hate"], {"Hate": 2}, [{"category": "Hate"}]])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        {"categoriesAnalysis": [{"category": "Hate", "severity": SECRET}]},
        {"categoriesAnalysis": [{"category": "Hate"}]},
        {"categoriesAnalysis": SECRET},
        {"blocklistsMatch": [SECRET]},
        {"userPromptAnalysis": {"attackDetected": SECRET}},
        {"documentsAnalysis": [{}]},
        {"protectedMaterialAnalysis": SECRET},
        {"ungroundedDetected": SECRET},
        {"ungroundedDetected": True, "ungroundedPercentage": SECRET},
        {
            "ungroundedDetected": True,
            "ungroundedDetails": [{"text": SECRET, "offset": {}, "length": {}}],
        },
        {"hateResult": [SECRET]},
    ],
)
def test_malformed_responses_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert SECRET not in str(error.value)
