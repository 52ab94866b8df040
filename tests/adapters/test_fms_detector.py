"""FMS Guardrails Detector API responses (foundation-model-stack detector API, ADR 003/011)."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.fms_detector import FmsDetectorAdapter

ADAPTER = FmsDetectorAdapter()
EMAIL = "alice@example.com"
CARD = "4111-1111-1111-1111"

# POST /api/v1/text/contents with contents ["Mail alice@example.com, card ...", "hello"]
CONTENTS = [
    [
        {
            "start": 5,
            "end": 22,
            "text": EMAIL,
            "detection": "EmailAddress",
            "detection_type": "pii",
            "score": 1.0,
            "evidence": [],
        },
        {
            "start": 29,
            "end": 48,
            "text": CARD,
            "detection": "CreditCard",
            "detection_type": "pii",
            "score": 1.0,
        },
    ],
    [],
]


def test_contents_response_joins_type_and_detection_with_offsets():
    signals = ADAPTER.parse(CONTENTS)
    assert signals == [
        Signal("pii/EmailAddress", 1.0, 5, 22),
        Signal("pii/CreditCard", 1.0, 29, 48),
    ]
    assert EMAIL not in repr(signals)
    assert CARD not in repr(signals)
    assert "text" in ADAPTER.raw_text_keys


def test_orchestrator_detections():
    output = {
        "detections": [
            {
                "start": 0,
                "end": 29,
                "text": "You dotard I hate this stuff!",
                "detection": "single_label_classification",
                "detection_type": "LABEL_1",
                "detector_id": "ibm-hap-38m-detector",
                "score": 0.8637843728065491,
            }
        ]
    }
    signals = ADAPTER.parse(output)
    assert signals == [Signal("LABEL_1/single_label_classification", 0.8637843728065491, 0, 29)]
    assert "dotard" not in repr(signals)


def test_generation_detections_have_no_spans():
    output = [
        {
            "detection_type": "risk",
            "detection": "Yes",
            "score": 0.97,
            "evidence": [],
            "metadata": {"confidence": "High"},
        }
    ]
    assert ADAPTER.parse(output) == [Signal("risk/Yes", 0.97)]
    assert ADAPTER.parse({"detections": []}) == []


@pytest.mark.parametrize(
    "output", ["pii", ["pii"], [[]], [], [{"label": "pii", "score": 1.0}], {"pii": 1.0}]
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "detection",
    [
        {"detection": "EmailAddress", "score": 1.0, "text": EMAIL},
        {"detection": "EmailAddress", "detection_type": "pii", "text": EMAIL},
        {"detection": "EmailAddress", "detection_type": "pii", "score": EMAIL},
        {
            "detection": "EmailAddress",
            "detection_type": "pii",
            "score": 1.0,
            "start": 3,
            "text": EMAIL,
        },
        {
            "detection": "EmailAddress",
            "detection_type": "pii",
            "score": 1.0,
            "start": EMAIL,
            "end": 4,
        },
        {"detection": ["EmailAddress"], "detection_type": "pii", "score": 1.0},
    ],
)
def test_malformed_detections_raise_without_echoing_values(detection):
    for output in ([[detection]], [detection], {"detections": [detection]}):
        with pytest.raises(OutputShapeError) as error:
            ADAPTER.parse(output)
        assert EMAIL not in str(error.value)


def test_detections_must_be_a_list():
    with pytest.raises(OutputShapeError):
        ADAPTER.parse({"detections": EMAIL})
