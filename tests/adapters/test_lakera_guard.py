"""Lakera Guard v2 ``/v2/guard`` responses."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.lakera_guard import LakeraGuardAdapter

ADAPTER = LakeraGuardAdapter()


def breakdown(detector_type, detected):
    return {
        "project_id": "project-1",
        "policy_id": "policy-lakera-default",
        "detector_id": f"detector-lakera-default-{detector_type}",
        "detector_type": detector_type,
        "detected": detected,
        "message_id": 0,
    }


def test_detected_breakdown_items_and_payload_spans():
    output = {
        "flagged": True,
        "breakdown": [
            breakdown("prompt_attack", True),
            breakdown("pii/email", True),
            breakdown("moderated_content/hate", False),
        ],
        "payload": [
            {
                "start": 11,
                "end": 28,
                "text": "alice@example.com",
                "detector_type": "pii/email",
                "labels": ["pii/email"],
                "message_id": 0,
            }
        ],
        "metadata": {"request_uuid": "ce8f9d1c-0b5a-4c1b-9a66-6d1c0e3b7f2a"},
    }
    assert ADAPTER.parse(output) == [
        Signal("prompt_attack", 1.0),
        Signal("pii/email", 1.0),
        Signal("pii/email", 1.0, 11, 28),
    ]


def test_flagged_without_breakdown_is_a_bare_verdict():
    assert ADAPTER.parse({"flagged": True, "metadata": {}}) == [Signal("flagged", 1.0)]
    assert ADAPTER.parse({"flagged": False, "metadata": {}}) == []


@pytest.mark.parametrize("output", [{"results": []}, [], "flagged", {"other": 1}])
def test_other_shapes_are_not_read(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        {"flagged": True, "breakdown": [{"detector_type": "pii/email"}]},
        {"flagged": True, "breakdown": "alice@example.com"},
        {"flagged": True, "payload": [{"start": 5, "end": 1, "detector_type": "pii/email"}]},
        {"flagged": True, "breakdown": [{"detected": True, "detector_type": 7}]},
    ],
)
def test_malformed_responses_raise_without_echoing(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert "alice@example.com" not in str(error.value)
