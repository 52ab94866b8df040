"""TruffleHog v3 ``--json`` results, shaped like pkg/output/json.go's printer."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.trufflehog import (
    UNVERIFIED_SCORE,
    VERIFIED_SCORE,
    TrufflehogAdapter,
)

ADAPTER = TrufflehogAdapter()
KEY_ID = "AKIAQYLPMN5HFIQR7XZK"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8vLm2Ra1"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
EMAIL = "alice.payroll@example.com"
PATH = "home/alice/payroll/settings.py"

AWS_RESULT = {
    "SourceMetadata": {
        "Data": {
            "Git": {
                "commit": "4f3c2a1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
                "file": PATH,
                "email": f"Alice Payroll <{EMAIL}>",
                "repository": "https://github.com/acme/payroll.git",
                "timestamp": "2024-05-01 12:00:00 +0000",
                "line": 3,
            }
        }
    },
    "SourceID": 1,
    "SourceType": 16,
    "SourceName": "trufflehog - git",
    "DetectorType": 2,
    "DetectorName": "AWS",
    "DetectorDescription": "AWS (Amazon Web Services) is a comprehensive cloud computing "
    "platform offering a wide range of on-demand services like computing power, storage, "
    "databases.",
    "DecoderName": "PLAIN",
    "Verified": True,
    "VerificationFromCache": False,
    "Raw": KEY_ID,
    "RawV2": f"{KEY_ID}:{SECRET}",
    "Redacted": KEY_ID,
    "ExtraData": {
        "account": "595918472158",
        "arn": "arn:aws:iam::595918472158:user/alice.payroll",
        "resource_type": "Access key",
        "rotation_guide": "https://howtorotate.com/docs/tutorials/aws/",
    },
    "StructuredData": None,
}
STRIPE_RESULT = {
    "SourceMetadata": {"Data": {"Filesystem": {"file": PATH, "line": 9}}},
    "SourceID": 2,
    "SourceType": 15,
    "SourceName": "trufflehog - filesystem",
    "DetectorType": 17,
    "DetectorName": "Stripe",
    "DecoderName": "BASE64",
    "Verified": False,
    "VerificationFromCache": False,
    "VerificationError": f"Get https://api.stripe.com/v1/charges?key={STRIPE}: i/o timeout",
    "Raw": STRIPE,
    "RawV2": "",
    "Redacted": "sk_live_4eC3****",
    "ExtraData": None,
    "StructuredData": None,
    "SecretParts": {"key": STRIPE},
}
VALUES = (KEY_ID, SECRET, STRIPE, EMAIL, "alice", "payroll", "595918472158")


def test_each_result_is_its_detector_name_scored_by_verification():
    signals = ADAPTER.parse([AWS_RESULT, STRIPE_RESULT])
    assert signals == [Signal("AWS", VERIFIED_SCORE), Signal("Stripe", UNVERIFIED_SCORE)]
    assert (VERIFIED_SCORE, UNVERIFIED_SCORE) == (1.0, 0.5)
    for value in VALUES:
        assert value not in repr(signals)


def test_secret_bearing_keys_are_declared_raw_text():
    assert {"Raw", "RawV2", "Redacted", "SecretParts"} <= ADAPTER.raw_text_keys
    assert {"SourceMetadata", "ExtraData", "StructuredData"} <= ADAPTER.raw_text_keys
    content_keys = {
        key
        for result in (AWS_RESULT, STRIPE_RESULT)
        for key, value in result.items()
        if any(secret in str(value) for secret in VALUES)
    }
    assert content_keys <= ADAPTER.raw_text_keys


def test_one_json_line_object_and_missing_verified():
    assert ADAPTER.parse(AWS_RESULT) == [Signal("AWS", 1.0)]
    assert ADAPTER.parse({"DetectorName": "Github"}) == [Signal("Github", 0.5)]


def test_no_results_means_no_signals():
    assert ADAPTER.parse([]) == []


@pytest.mark.parametrize("output", ["AWS", ["AWS", "Stripe"], {"AWS": 1.0}])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        [AWS_RESULT, STRIPE],
        [AWS_RESULT, {"Raw": STRIPE, "Verified": True}],
        {"DetectorType": 17, "Raw": STRIPE},
        {"DetectorName": None, "Raw": STRIPE},
        {"DetectorName": [STRIPE], "Raw": STRIPE},
        {"DetectorName": "Stripe", "Verified": STRIPE},
        {"DetectorName": "Stripe", "Verified": "true"},
    ],
)
def test_malformed_results_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert STRIPE not in str(error.value)
