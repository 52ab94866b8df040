"""Amazon Comprehend PII, toxicity and prompt safety responses, shaped like the comprehend
2017-11-27 service model's DetectPiiEntities, ContainsPiiEntities, DetectToxicContent and
ClassifyDocument responses."""

import copy

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.aws_comprehend import AwsComprehendAdapter

ADAPTER = AwsComprehendAdapter()
SSN = "078-05-1120"
PERSON = "Alice Payroll"
FILE = "hr/alice-payroll-review.txt"

DETECT_PII = {
    "Entities": [
        {"Score": 0.9999, "Type": "NAME", "BeginOffset": 11, "EndOffset": 24},
        {"Score": 0.9921, "Type": "SSN", "BeginOffset": 36, "EndOffset": 47},
        {"Score": 0.61, "Type": "DATE_TIME"},
    ]
}
CONTAINS_PII = {"Labels": [{"Name": "SSN", "Score": 0.9921}, {"Name": "NAME", "Score": 0.9999}]}
TOXIC = {
    "ResultList": [
        {
            "Labels": [
                {"Name": "PROFANITY", "Score": 0.0004},
                {"Name": "HATE_SPEECH", "Score": 0.0151},
                {"Name": "INSULT", "Score": 0.8547},
                {"Name": "GRAPHIC", "Score": 0.0001},
                {"Name": "HARASSMENT_OR_ABUSE", "Score": 0.2111},
                {"Name": "SEXUAL", "Score": 0.0389},
                {"Name": "VIOLENCE_OR_THREAT", "Score": 0.0067},
            ],
            "Toxicity": 0.8209,
        },
        {"Labels": [{"Name": "VIOLENCE_OR_THREAT", "Score": 0.97}], "Toxicity": 0.95},
    ]
}
PROMPT_SAFETY = {
    "Classes": [
        {"Name": "UNSAFE_PROMPT", "Score": 0.9964},
        {"Name": "SAFE_PROMPT", "Score": 0.0036},
    ]
}
JOB_LINES = [
    {"File": FILE, "Line": 0, "Entities": [
        {"BeginOffset": 0, "EndOffset": 13, "Score": 0.99, "Type": "NAME"}]},
    {"File": FILE, "Line": 1, "Entities": []},
]  # fmt: skip


def test_detect_pii_entities_gives_types_scores_and_spans():
    assert ADAPTER.parse(DETECT_PII) == [
        Signal("NAME", 0.9999, 11, 24),
        Signal("SSN", 0.9921, 36, 47),
        Signal("DATE_TIME", 0.61),
    ]


def test_contains_pii_entities_gives_label_names():
    assert ADAPTER.parse(CONTAINS_PII) == [Signal("SSN", 0.9921), Signal("NAME", 0.9999)]


def test_toxic_content_gives_every_category_and_the_overall_score_as_toxicity():
    signals = ADAPTER.parse(TOXIC)
    assert signals is not None
    assert len(signals) == 10
    assert signals[2] == Signal("INSULT", 0.8547)
    assert signals[7] == Signal("TOXICITY", 0.8209)
    assert signals[8:] == [Signal("VIOLENCE_OR_THREAT", 0.97), Signal("TOXICITY", 0.95)]
    # One ToxicLabels result on its own reads the same.
    assert ADAPTER.parse(TOXIC["ResultList"][1]) == signals[8:]


def test_prompt_safety_classifier_gives_both_classes():
    assert ADAPTER.parse(PROMPT_SAFETY) == [
        Signal("UNSAFE_PROMPT", 0.9964),
        Signal("SAFE_PROMPT", 0.0036),
    ]


def test_pii_job_output_lines_drop_the_file_name():
    signals = ADAPTER.parse(JOB_LINES)
    assert signals == [Signal("NAME", 0.99, 0, 13)]
    assert ADAPTER.parse(JOB_LINES[0]) == signals
    assert "alice" not in repr(signals)
    assert {"File", "Text"} <= ADAPTER.raw_text_keys


def test_echoed_entity_text_is_never_copied():
    output = {"Entities": [{"Type": "SSN", "Score": 0.9, "Text": SSN, "BeginOffset": 0,
                            "EndOffset": 11}]}  # fmt: skip
    signals = ADAPTER.parse(output)
    assert signals == [Signal("SSN", 0.9, 0, 11)]
    assert SSN not in repr(signals)


def test_unscored_labels_are_assertions_and_empty_answers_give_nothing():
    assert ADAPTER.parse({"Labels": [{"Name": "EMAIL"}]}) == [Signal("EMAIL", None)]
    assert ADAPTER.parse({"Entities": []}) == []
    assert ADAPTER.parse({"Labels": []}) == []
    assert ADAPTER.parse({"ResultList": []}) == []
    assert ADAPTER.parse({"Classes": [], "Labels": None}) == []


def test_scores_are_probabilities_clamped_to_the_unit_interval():
    assert ADAPTER.parse({"Labels": [{"Name": "EMAIL", "Score": 1.0000001}]}) == [
        Signal("EMAIL", 1.0)
    ]


@pytest.mark.parametrize(
    "output", ["SSN", ["SSN"], {"SSN": 0.9}, [{"label": "SSN", "score": 0.9}], {"results": []}]
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


def _pii(**entity: object) -> dict[str, object]:
    return {"Entities": [entity]}


@pytest.mark.parametrize(
    "output",
    [
        {"Entities": SSN},
        {"Entities": [SSN]},
        _pii(Score=0.9),
        _pii(Type=[SSN], Score=0.9),
        _pii(Type="SSN", Score=SSN),
        _pii(Type="SSN", Score=float("nan")),
        _pii(Type="SSN", Score=True),
        _pii(Type="SSN", BeginOffset=-1, EndOffset=3),
        _pii(Type="SSN", BeginOffset=SSN, EndOffset=3),
        _pii(Type="SSN", BeginOffset=9, EndOffset=3),
        _pii(Type=SSN * 20, Score=0.9),
        # Comprehend Medical DetectPHI: entities with a Category are refused.
        _pii(Type="NAME", Category="PROTECTED_HEALTH_INFORMATION", Text=PERSON, Score=0.9),
        {"Labels": [{"Score": 0.9}]},
        {"Labels": {"Name": "SSN"}},
        {"Classes": [{"Name": 7, "Score": 0.9}]},
        {"ResultList": SSN},
        {"ResultList": [SSN]},
        {"ResultList": [{"Index": 0}]},
        {"ResultList": [{"Labels": [], "Toxicity": SSN}]},
        {"Toxicity": [0.9]},
        [DETECT_PII, SSN],
        [DETECT_PII, {"File": FILE}],
    ],
)
def test_malformed_responses_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(copy.deepcopy(output))
    message = str(error.value)
    for value in (SSN, PERSON, FILE, "alice"):
        assert value not in message
