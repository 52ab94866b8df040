"""The registry's fallback to the generic forms, and robustness of every parser."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.generic import parse_generic
from llama_mapper.adapters.registry import AdapterRegistry, default_registry
from llama_mapper.adapters.vendors import ALL

ADAPTER_NAMES = {
    "presidio",
    "openai-moderation",
    "azure-content-safety",
    "bedrock-guardrails",
    "google-dlp",
    "llama-guard",
    "nemo-guardrails",
    "llm-guard",
    "prompt-guard",
    "deberta-toxicity",
    "detoxify",
    "detect-secrets",
    "regex-pii",
    "fms-detector",
    "granite-guardian",
    "prompt-injection",
    "lakera-guard",
    "gitleaks",
    "trufflehog",
    "aws-macie",
    "aws-comprehend",
    "noseyparker",
    "azure-ai-language-pii",
}


def test_default_registry_holds_every_documented_adapter():
    assert set(default_registry().names()) == ADAPTER_NAMES
    assert len(ALL) == len(ADAPTER_NAMES)


def test_every_adapter_declares_its_raw_text_keys():
    for adapter in ALL:
        assert isinstance(adapter.raw_text_keys, frozenset)
        assert all(isinstance(key, str) for key in adapter.raw_text_keys)


def test_registry_uses_the_native_adapter_first():
    registry = default_registry()
    assert registry.parse("llama-guard", "unsafe\nS1,S10", "binary") == [
        Signal("S1"),
        Signal("S10"),
    ]
    assert registry.raw_text_keys("bedrock-guardrails") >= {"match"}
    assert registry.raw_text_keys("no-such-adapter") == frozenset()


@pytest.mark.parametrize(
    ("adapter", "output", "scale", "expected"),
    [
        ("llama-guard", "S1|S2", "binary", [Signal("S1"), Signal("S2")]),
        ("presidio", ["EMAIL_ADDRESS"], "probability", [Signal("EMAIL_ADDRESS")]),
        ("azure-content-safety", {"Hate": 6}, "azure_severity", [Signal("Hate", 6 / 7)]),
        (
            "bedrock-guardrails",
            [{"type": "HATE", "confidence": "HIGH"}],
            "bedrock_confidence",
            [Signal("HATE", 0.9)],
        ),
        (
            "google-dlp",
            {"EMAIL_ADDRESS": "LIKELY"},
            "dlp_likelihood",
            [Signal("EMAIL_ADDRESS", 0.75)],
        ),
        (
            "llm-guard",
            {"Toxicity": -0.5, "Secrets": 0.7},
            "llm_guard_risk",
            [Signal("Toxicity", 0.0), Signal("Secrets", 0.7)],
        ),
        ("generic", "toxic", "probability", [Signal("toxic")]),
    ],
)
def test_registry_falls_back_to_the_generic_forms(adapter, output, scale, expected):
    assert default_registry().parse(adapter, output, scale) == expected


def test_an_empty_registry_is_purely_generic():
    registry = AdapterRegistry()
    assert registry.parse("presidio", [{"label": "x", "score": 2}], "probability") == [
        Signal("x", 1.0)
    ]


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="twice"):
        AdapterRegistry([*ALL, ALL[0]])


# Keys and strings the adapters look for, so that fuzzing reaches their vendor branches.
VENDOR_KEYS = sorted(
    {
        "entity_type",
        "start",
        "end",
        "score",
        "label",
        "results",
        "categories",
        "category_scores",
        "categoriesAnalysis",
        "category",
        "severity",
        "blocklistsMatch",
        "blocklistsMatchResults",
        "offset",
        "length",
        "codePoint",
        "userPromptAnalysis",
        "attackDetected",
        "documentsAnalysis",
        "jailbreakAnalysis",
        "detected",
        "protectedMaterialAnalysis",
        "codeCitations",
        "ungroundedDetected",
        "ungrounded",
        "ungroundedPercentage",
        "ungroundedDetails",
        "hateResult",
        "assessments",
        "topicPolicy",
        "topics",
        "contentPolicy",
        "filters",
        "type",
        "confidence",
        "wordPolicy",
        "customWords",
        "managedWordLists",
        "sensitiveInformationPolicy",
        "piiEntities",
        "regexes",
        "contextualGroundingPolicy",
        "threshold",
        "result",
        "findings",
        "infoType",
        "name",
        "likelihood",
        "location",
        "codepointRange",
        "generated_text",
        "choices",
        "message",
        "content",
        "text",
        "User Safety",
        "Response Safety",
        "Safety Categories",
        "results_valid",
        "results_score",
        "is_valid",
        "scanners",
        "detections",
        "detection",
        "detection_type",
        "risk",
        "risk_name",
        "probability",
        "RuleID",
        "DetectorName",
        "DetectorType",
        "Verified",
        "classificationDetails",
        "policyDetails",
        "sensitiveData",
        "customDataIdentifiers",
        "count",
        "detail",
        "Entities",
        "Type",
        "BeginOffset",
        "EndOffset",
        "Score",
        "Labels",
        "Name",
        "ResultList",
        "Toxicity",
        "Classes",
        "Category",
        "kind",
        "documents",
        "entities",
        "redactedText",
        "subcategory",
        "confidenceScore",
        "tasks",
        "items",
    }
)
VENDOR_STRINGS = [
    "safe",
    "unsafe",
    "unsafe\nS1,S10",
    "Yes",
    "No",
    "High",
    "Low",
    "HIGH",
    "NONE",
    "LIKELY",
    "VERY_UNLIKELY",
    "7",
    "PiiEntityRecognitionResults",
    '{"User Safety": "unsafe"}',
    "",
]
keys = st.sampled_from(VENDOR_KEYS) | st.text(max_size=8)
SCALES = [
    "probability",
    "azure_severity",
    "bedrock_confidence",
    "dlp_likelihood",
    "binary",
    "llm_guard_risk",
]


def json_like(*, huge_ints: bool = True) -> st.SearchStrategy[object]:
    """None/bool/int/float/str leaves nested in lists and objects, biased to vendor keys."""
    # Without huge_ints the integers stay within float range.
    integers = st.integers() if huge_ints else st.integers(-(2**1000), 2**1000)
    leaves = (
        st.none()
        | st.booleans()
        | integers
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=20)
        | st.sampled_from(VENDOR_STRINGS)
    )
    if huge_ints:  # beyond float range: float() overflows
        leaves |= st.integers(min_value=10**308, max_value=10**400)
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=25,
    )


def _check(signals: object) -> None:
    assert isinstance(signals, list)
    for signal in signals:
        assert isinstance(signal, Signal)
        assert isinstance(signal.label, str)
        assert signal.label
        if signal.score is not None:
            assert 0.0 <= signal.score <= 1.0
            assert not math.isnan(signal.score)
        for position in (signal.start, signal.end):
            assert position is None or (isinstance(position, int) and position >= 0)


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None)
@given(json_like())
def test_adapters_return_signals_none_or_shape_errors(value):
    for adapter in ALL:
        try:
            signals = adapter.parse(value)
        except OutputShapeError:
            continue
        if signals is not None:
            _check(signals)


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None)
@given(json_like(), st.sampled_from(SCALES))
def test_parse_generic_returns_signals_or_shape_errors(value, scale):
    try:
        signals = parse_generic(value, scale)
    except OutputShapeError:
        return
    _check(signals)


@pytest.mark.parametrize("scale", ["probability", "azure_severity", "llm_guard_risk"])
def test_parse_generic_rejects_ints_beyond_float_range(scale):
    with pytest.raises(OutputShapeError):
        parse_generic({"toxic": 10**400}, scale)
