"""detect-secrets scan reports (the .secrets.baseline format)."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.detect_secrets import DetectSecretsAdapter

ADAPTER = DetectSecretsAdapter()
HASH = "25910f981e85ca04baf359199dd0bd4a3ae738b6"
PATH = "home/alice/payroll/settings.py"

REPORT = {
    "version": "1.5.0",
    "plugins_used": [
        {"name": "AWSKeyDetector"},
        {"name": "KeywordDetector"},
        {"name": "PrivateKeyDetector"},
        {"name": "Base64HighEntropyString", "limit": 4.5},
    ],
    "filters_used": [
        {"path": "detect_secrets.filters.allowlist.is_line_allowlisted"},
        {"path": "detect_secrets.filters.heuristic.is_likely_id_string"},
    ],
    "results": {
        PATH: [
            {
                "type": "AWS Access Key",
                "filename": PATH,
                "hashed_secret": HASH,
                "is_verified": False,
                "line_number": 3,
            },
            {
                "type": "Secret Keyword",
                "filename": PATH,
                "hashed_secret": "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4",
                "is_verified": True,
                "line_number": 7,
            },
        ],
        "keys/id_rsa": [
            {
                "type": "Private Key",
                "filename": "keys/id_rsa",
                "hashed_secret": "be4fc4886bd949b369d5e092eb87494f12e57e5b",
                "is_verified": False,
                "line_number": 1,
            }
        ],
    },
    "generated_at": "2024-05-01T12:00:00Z",
}


def test_every_secret_is_one_binary_signal_of_its_type():
    signals = ADAPTER.parse(REPORT)
    assert signals == [
        Signal("AWS Access Key", 1.0),
        Signal("Secret Keyword", 1.0),
        Signal("Private Key", 1.0),
    ]
    assert HASH not in repr(signals)
    assert "alice" not in repr(signals)
    assert {"hashed_secret", "filename"} <= ADAPTER.raw_text_keys


def test_a_clean_scan_has_no_signals():
    assert ADAPTER.parse({"version": "1.5.0", "results": {}}) == []


@pytest.mark.parametrize("output", ["Private Key", ["AWS Access Key"], {"Private Key": 1}])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        {"results": [PATH]},
        {"results": {PATH: PATH}},
        {"results": {PATH: [PATH]}},
        {"results": {PATH: [{"filename": PATH, "hashed_secret": HASH}]}},
        {"results": {PATH: [{"type": ["AWS"], "hashed_secret": HASH}]}},
    ],
)
def test_malformed_reports_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert PATH not in str(error.value)
    assert HASH not in str(error.value)
