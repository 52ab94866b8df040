"""Azure AI Language PII detection, shaped like the analyze-text REST responses."""

import copy

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.azure_language_pii import AzureLanguagePiiAdapter

ADAPTER = AzureLanguagePiiAdapter()
SSN = "859-98-0987"
NAME = "Alice Payroll"
EMAIL = "alice.payroll@example.com"
TEXT = f"{NAME} ({EMAIL}) gave her SSN {SSN} to the clinic"
REDACTED = "************* (*************************) gave her SSN *********** to the clinic"

DOCUMENTS = [
    {
        "id": "1",
        "redactedText": REDACTED,
        "entities": [
            {"text": NAME, "category": "Person", "offset": 0, "length": 13,
             "confidenceScore": 0.99},
            {"text": EMAIL, "category": "Email", "offset": 15, "length": 25,
             "confidenceScore": 0.8},
            {"text": SSN, "category": "USSocialSecurityNumber", "offset": 55, "length": 11,
             "confidenceScore": 0.65},
        ],
        "warnings": [{"code": "LongWordsInDocument",
                      "message": f"The document contains very long words: {TEXT}"}],
    },
    {"id": "2", "redactedText": "nothing to see", "entities": [], "warnings": []},
]  # fmt: skip
RESPONSE = {
    "kind": "PiiEntityRecognitionResults",
    "results": {
        "documents": DOCUMENTS,
        "errors": [
            {"id": "3", "error": {"code": "InvalidArgument", "message": f"Invalid: {TEXT}"}}
        ],
        "modelVersion": "2021-01-15",
    },
}
EXPECTED = [
    Signal("Person", 0.99, 0, 13),
    Signal("Email", 0.8, 15, 40),
    Signal("USSocialSecurityNumber", 0.65, 55, 66),
]
RAW = (SSN, NAME, EMAIL, "alice", "clinic")


def test_sync_response_gives_each_entity_category_score_and_span():
    signals = ADAPTER.parse(RESPONSE)
    assert signals == EXPECTED
    for value in RAW:
        assert value not in repr(signals)


def test_text_and_redacted_text_are_declared_raw_text():
    assert {"text", "redactedText"} <= ADAPTER.raw_text_keys


def test_bare_results_document_lists_and_one_document():
    assert ADAPTER.parse(RESPONSE["results"]) == EXPECTED
    assert ADAPTER.parse(DOCUMENTS) == EXPECTED
    assert ADAPTER.parse(DOCUMENTS[0]) == EXPECTED


def test_async_job_task_results_and_job_state():
    task = {
        **RESPONSE,
        "kind": "PiiEntityRecognitionLROResults",
        "taskName": "pii",
        "status": "succeeded",
        "lastUpdateDateTime": "2025-11-01T12:00:00Z",
    }
    assert ADAPTER.parse(task) == EXPECTED
    sentiment = {"kind": "SentimentAnalysisLROResults", "results": {"documents": [{}]}}
    job = {"jobId": "7a", "status": "succeeded", "tasks": {"items": [sentiment, task]}}
    assert ADAPTER.parse(job) == EXPECTED  # fmt: skip


def test_the_finest_label_wins_type_then_subcategory():
    entities = [
        # Older models: DateTime/Date and Quantity/Age.
        {"text": "2015-01-01", "category": "DateTime", "subcategory": "Date",
         "offset": 3, "length": 10, "confidenceScore": 0.8},
        {"text": "42", "category": "Quantity", "subcategory": "Age", "offset": 20,
         "length": 2, "confidenceScore": 0.9},
        # API 2024-11-15-preview and later: type and tags.
        {"text": "1990-04-01", "category": "DateTime", "type": "DateOfBirth",
         "tags": [{"name": "Date", "confidenceScore": 0.9}], "offset": 30, "length": 10,
         "confidenceScore": 0.9},
        {"text": NAME, "category": "Person", "type": "Person", "subcategory": None,
         "offset": 50, "length": 13, "confidenceScore": 1.5},
    ]  # fmt: skip
    assert ADAPTER.parse([{"id": "1", "entities": entities}]) == [
        Signal("Date", 0.8, 3, 13),
        Signal("Age", 0.9, 20, 22),
        Signal("DateOfBirth", 0.9, 30, 40),
        Signal("Person", 1.0, 50, 63),  # probability clamped to [0, 1]
    ]


def test_missing_score_or_offsets_are_optional():
    entities = [{"category": "Email"}, {"category": "URL", "offset": 4, "confidenceScore": 0.5}]
    assert ADAPTER.parse({"documents": [{"id": "1", "entities": entities}]}) == [
        Signal("Email", None),
        Signal("URL", 0.5),
    ]


def test_nothing_found_means_no_signals():
    assert ADAPTER.parse({"documents": []}) == []
    assert ADAPTER.parse({"kind": "PiiEntityRecognitionResults",
                          "results": {"documents": [], "errors": []}}) == []  # fmt: skip
    assert ADAPTER.parse([{"id": "1", "redactedText": "x", "entities": []}]) == []


@pytest.mark.parametrize(
    "output",
    ["Person", ["Person"], [{"label": "Person", "score": 0.9}], {"Person": 0.9}, [], {"kind": 1}],
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


def _with_entity(entity: object) -> dict[str, object]:
    response = copy.deepcopy(RESPONSE)
    response["results"]["documents"][0]["entities"] = [entity]
    return response


@pytest.mark.parametrize(
    "output",
    [
        {"kind": "EntityRecognitionResults", "results": {"documents": []}},
        {"kind": ["PiiEntityRecognitionResults"], "results": {"documents": []}},
        {"kind": "PiiEntityRecognitionResults", "results": TEXT},
        {"kind": "PiiEntityRecognitionResults", "results": {"errors": []}},
        {"documents": TEXT},
        {"documents": [TEXT]},
        {"documents": [{"id": "1", "redactedText": TEXT}]},
        {"documents": [{"id": "1", "entities": TEXT}]},
        {"tasks": TEXT},
        {"tasks": {"items": [TEXT]}},
        [{"entities": [{"text": SSN}]}],
        _with_entity(TEXT),
        _with_entity({"text": SSN, "offset": 0, "length": 11}),
        _with_entity({"text": SSN, "category": ""}),
        _with_entity({"text": SSN, "category": [SSN]}),
        _with_entity({"text": SSN, "category": TEXT * 4}),
        _with_entity({"text": SSN, "category": "Person", "subcategory": [TEXT]}),
        _with_entity({"text": SSN, "category": "Person", "type": 7}),
        _with_entity({"text": SSN, "category": "Person", "confidenceScore": SSN}),
        _with_entity({"text": SSN, "category": "Person", "confidenceScore": float("nan")}),
        _with_entity({"text": SSN, "category": "Person", "offset": -1, "length": 3}),
        _with_entity({"text": SSN, "category": "Person", "offset": 0, "length": SSN}),
    ],
)
def test_malformed_responses_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    for value in (*RAW, TEXT):
        assert value not in str(error.value)
