"""gitleaks JSON reports (``--report-format json``), shaped like gitleaks v8's report.Finding."""

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.gitleaks import GitleaksAdapter

ADAPTER = GitleaksAdapter()
SECRET = "AKIAQYLPMN5HFIQR7XZK"
MATCH = f"aws_access_key_id = {SECRET}"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
AUTHOR = "Alice Payroll"
EMAIL = "alice.payroll@example.com"
PATH = "home/alice/payroll/settings.py"

REPORT = [
    {
        "RuleID": "aws-access-token",
        "Description": "Identified a pattern that may indicate AWS credentials, risking "
        "unauthorized cloud resource access and data breaches on AWS platforms.",
        "StartLine": 3,
        "EndLine": 3,
        "StartColumn": 21,
        "EndColumn": 40,
        "Match": MATCH,
        "Secret": SECRET,
        "File": PATH,
        "SymlinkFile": "",
        "Commit": "4f3c2a1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
        "Link": f"https://github.com/acme/payroll/blob/4f3c2a1/{PATH}#L3",
        "Entropy": 3.8464394,
        "Author": AUTHOR,
        "Email": EMAIL,
        "Date": "2024-05-01T12:00:00Z",
        "Message": f"add {SECRET} for the payroll export",
        "Tags": [],
        "Fingerprint": f"4f3c2a1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a:{PATH}:aws-access-token:3",
    },
    {
        "RuleID": "stripe-access-token",
        "Description": "Found a Stripe Access Token, posing a risk to payment processing "
        "services and sensitive financial data.",
        "StartLine": 9,
        "EndLine": 9,
        "StartColumn": 15,
        "EndColumn": 46,
        "Match": f"STRIPE_KEY = {STRIPE}",
        "Secret": STRIPE,
        "File": PATH,
        "SymlinkFile": "",
        "Commit": "",
        "Entropy": 4.4,
        "Author": "",
        "Email": "",
        "Date": "",
        "Message": "",
        "Tags": ["alert:repo-owner"],
        "Fingerprint": f"{PATH}:stripe-access-token:9",
    },
]


def test_every_finding_is_one_binary_signal_of_its_rule():
    signals = ADAPTER.parse(REPORT)
    assert signals == [Signal("aws-access-token", 1.0), Signal("stripe-access-token", 1.0)]
    for value in (SECRET, STRIPE, MATCH, AUTHOR, EMAIL, "alice", "payroll"):
        assert value not in repr(signals)


def test_secret_bearing_and_personal_keys_are_declared_raw_text():
    assert {"Match", "Secret", "Line", "Message", "Author", "Email"} <= ADAPTER.raw_text_keys
    assert {"File", "SymlinkFile", "Fingerprint", "Link"} <= ADAPTER.raw_text_keys
    # Every key that holds a value from the scanned content is one of them.
    content_keys = {
        key
        for finding in REPORT
        for key, value in finding.items()
        if any(secret in str(value) for secret in (SECRET, STRIPE, AUTHOR, EMAIL, "alice"))
    }
    assert content_keys <= ADAPTER.raw_text_keys


def test_a_clean_scan_has_no_signals():
    assert ADAPTER.parse([]) == []


def test_one_finding_object_is_read_too():
    assert ADAPTER.parse(REPORT[0]) == [Signal("aws-access-token", 1.0)]


@pytest.mark.parametrize("output", ["aws-access-token", ["aws-access-token"], {"x": 1}])
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        [REPORT[0], SECRET],
        [REPORT[0], {"Secret": SECRET, "Match": MATCH}],
        [{"RuleID": None, "Secret": SECRET}],
        [{"RuleID": [SECRET], "Secret": SECRET}],
        [{"RuleID": 7, "Secret": SECRET}],
        [{"RuleID": "  ", "Secret": SECRET}],
        {"RuleID": SECRET * 20, "Secret": SECRET},
    ],
)
def test_malformed_reports_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert SECRET not in str(error.value)
    assert MATCH not in str(error.value)
