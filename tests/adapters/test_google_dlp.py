"""Sensitive Data Protection content:inspect responses, shaped like the DLP quickstart output."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.google_dlp import GoogleDlpAdapter

ADAPTER = GoogleDlpAdapter()
EMAIL = "alice@example.com"

# "alice@example.com, card 4111-1111-1111-1111, SSN 222-22-2222"
RESPONSE = {
    "result": {
        "findings": [
            {
                "quote": EMAIL,
                "infoType": {
                    "name": "EMAIL_ADDRESS",
                    "sensitivityScore": {"score": "SENSITIVITY_MODERATE"},
                },
                "likelihood": "LIKELY",
                "location": {
                    "byteRange": {"end": "17"},
                    "codepointRange": {"end": "17"},
                },
                "createTime": "2024-05-01T12:00:00.123Z",
                "findingId": "2024-05-01T12:00:00.125000Z4617430495837372386",
            },
            {
                "quote": "4111-1111-1111-1111",
                "infoType": {"name": "CREDIT_CARD_NUMBER"},
                "likelihood": "VERY_LIKELY",
                "location": {
                    "byteRange": {"start": "24", "end": "43"},
                    "codepointRange": {"start": "24", "end": "43"},
                },
                "createTime": "2024-05-01T12:00:00.123Z",
            },
            {
                "infoType": {"name": "US_SOCIAL_SECURITY_NUMBER"},
                "likelihood": "POSSIBLE",
                "location": {"codepointRange": {"start": 49, "end": 60}},
            },
        ]
    }
}


def test_findings_give_info_types_likelihoods_and_code_point_offsets():
    signals = ADAPTER.parse(RESPONSE)
    assert signals == [
        Signal("EMAIL_ADDRESS", 0.75, 0, 17),
        Signal("CREDIT_CARD_NUMBER", 0.95, 24, 43),
        Signal("US_SOCIAL_SECURITY_NUMBER", 0.5, 49, 60),
    ]
    assert EMAIL not in repr(signals)
    assert "4111-1111-1111-1111" not in repr(signals)
    assert "quote" in ADAPTER.raw_text_keys


def test_empty_result_means_no_findings():
    assert ADAPTER.parse({"result": {}}) == []


def test_inspect_result_alone_and_defaults():
    finding = {"infoType": {"name": "PERSON_NAME"}}
    assert ADAPTER.parse({"findings": [finding]}) == [Signal("PERSON_NAME", 0.5)]


@pytest.mark.parametrize("output", ["EMAIL_ADDRESS", ["EMAIL_ADDRESS"], {"EMAIL_ADDRESS": 0.9}])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "finding",
    [
        {"quote": EMAIL},
        {"quote": EMAIL, "infoType": EMAIL},
        {"quote": EMAIL, "infoType": {"name": "EMAIL_ADDRESS"}, "likelihood": EMAIL},
        {"infoType": {"name": "EMAIL_ADDRESS"}, "location": {"codepointRange": {"end": EMAIL}}},
        {
            "infoType": {"name": "EMAIL_ADDRESS"},
            "location": {"codepointRange": {"start": 9, "end": 2}},
        },
        EMAIL,
    ],
)
def test_malformed_findings_raise_without_echoing_values(finding):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse({"result": {"findings": [finding]}})
    assert EMAIL not in str(error.value)


def test_result_must_be_an_object():
    with pytest.raises(OutputShapeError):
        ADAPTER.parse({"result": [EMAIL]})
