"""Nosey Parker reports (``report --format json`` / ``jsonl``), shaped like its JSON schema."""

import base64

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.noseyparker import NoseyParkerAdapter

ADAPTER = NoseyParkerAdapter()
SECRET = "ghp_XIxB7KMNdAr3zqWtQqhE94qglHqOzn1D1stg"
AWS_KEY = "AKIAQYLPMN5HFIQR7XZK"
AUTHOR = "Alice Payroll"
EMAIL = "alice.payroll@example.com"
PATH = "home/alice/payroll/settings.py"
MESSAGE = f"add {SECRET} for the payroll export"
NOTE = "Alice says this is the production token for payroll"


def _match(rule_name: str, text_id: str, secret: str) -> dict[str, object]:
    return {
        "blob_id": "bef17e1f92978931020b423cfcfb6f1e7381d559",
        "blob_metadata": {
            "charset": None,
            "id": "bef17e1f92978931020b423cfcfb6f1e7381d559",
            "mime_essence": "text/x-python",
            "num_bytes": 104,
        },
        "comment": NOTE,
        "groups": [base64.b64encode(secret.encode()).decode()],
        "location": {
            "offset_span": {"end": 103, "start": 63},
            "source_span": {"end": {"column": 51, "line": 3}, "start": {"column": 12, "line": 3}},
        },
        "provenance": [
            {"kind": "file", "path": PATH},
            {
                "kind": "git_repo",
                "repo_path": "/home/alice/payroll/.git",
                "first_commit": {
                    "blob_path": PATH,
                    "commit_metadata": {
                        "commit_id": "4f3c2a1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
                        "author_name": AUTHOR,
                        "author_email": EMAIL,
                        "author_timestamp": "1714564800 +0000",
                        "committer_name": AUTHOR,
                        "committer_email": EMAIL,
                        "committer_timestamp": "1714564800 +0000",
                        "message": MESSAGE,
                    },
                },
            },
        ],
        "redundant_to": [],
        "rule_name": rule_name,
        "rule_structural_id": "f6c4fca24a1c7f275d51d2718a1585ca6e4ae664",
        "rule_text_id": text_id,
        "score": None,
        "snippet": {
            "after": "\n",
            "before": "# This is fake configuration data\nUSERNAME=the_dude\nGITHUB_KEY=",
            "matching": secret,
        },
        "status": None,
        "structural_id": "155cdfa3e16d6abc09ecb8a2f659c2f84f7b91fc",
    }


def _finding(rule_name: str, text_id: str, secret: str) -> dict[str, object]:
    return {
        "comment": NOTE,
        "finding_id": "d551329ba5578559646aa49467be47e9d496578d",
        "groups": [base64.b64encode(secret.encode()).decode()],
        "matches": [_match(rule_name, text_id, secret)],
        "mean_score": None,
        "num_matches": 1,
        "num_redundant_matches": 0,
        "rule_name": rule_name,
        "rule_structural_id": "f6c4fca24a1c7f275d51d2718a1585ca6e4ae664",
        "rule_text_id": text_id,
        "statuses": [],
    }


REPORT = [
    _finding("GitHub Personal Access Token", "np.github.1", SECRET),
    _finding("AWS API Key", "np.aws.1", AWS_KEY),
]
# Before v0.17: no rule_text_id, and the match text as match_content.
OLD_REPORT = [
    {
        "match_content": AWS_KEY,
        "matches": [
            {
                "blob_id": "7980f2571d9c04d65eb338f65f21edbff4469a11",
                "capture_group_index": 1,
                "match_content": AWS_KEY,
                "provenance": [{"kind": "file", "path": PATH}],
                "rule_name": "AWS API Key",
                "snippet": {"after": "\n", "before": "AWS_KEY=", "matching": AWS_KEY},
            }
        ],
        "num_matches": 1,
        "rule_name": "AWS API Key",
    }
]
RAW = (SECRET, AWS_KEY, AUTHOR, EMAIL, "alice", "payroll", NOTE, REPORT[0]["groups"][0])


def test_every_finding_is_one_binary_signal_of_its_rule_id():
    signals = ADAPTER.parse(REPORT)
    assert signals == [Signal("np.github.1", 1.0), Signal("np.aws.1", 1.0)]
    for value in RAW:
        assert value not in repr(signals)


def test_a_finding_with_many_matches_is_still_one_signal():
    finding = _finding("GitHub Personal Access Token", "np.github.1", SECRET)
    finding["matches"] = [_match("GitHub Personal Access Token", "np.github.1", SECRET)] * 3
    finding["num_matches"] = 3
    assert ADAPTER.parse([finding]) == [Signal("np.github.1", 1.0)]


def test_reports_without_rule_text_id_use_the_rule_name():
    assert ADAPTER.parse(OLD_REPORT) == [Signal("AWS API Key", 1.0)]
    nulled = {**REPORT[1], "rule_text_id": None}
    assert ADAPTER.parse([nulled]) == [Signal("AWS API Key", 1.0)]


def test_jsonl_lines_sent_as_a_list_and_one_finding_object_are_read():
    assert ADAPTER.parse([REPORT[0]]) == [Signal("np.github.1", 1.0)]
    assert ADAPTER.parse(REPORT[0]) == [Signal("np.github.1", 1.0)]


def test_a_clean_report_has_no_signals():
    assert ADAPTER.parse([]) == []


def test_content_bearing_keys_are_declared_raw_text():
    keys = ADAPTER.raw_text_keys
    assert {"matches", "snippet", "groups", "provenance", "match_content", "comment"} <= keys
    # Every top-level key of a finding that holds scanned content, a location or a
    # person is one of them.
    content_keys = {
        key
        for finding in [*REPORT, *OLD_REPORT]
        for key, value in finding.items()
        if any(raw in str(value) for raw in RAW)
    }
    assert content_keys <= keys
    # The labels are not: the guard must still judge them.
    assert not {"rule_name", "rule_text_id"} & keys


@pytest.mark.parametrize(
    "output", ["np.github.1", ["GitHub Personal Access Token"], {"x": 1}, [{"label": "x"}]]
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


@pytest.mark.parametrize(
    "output",
    [
        [REPORT[0], SECRET],
        [REPORT[0], {"matches": [], "groups": [SECRET]}],
        [{"rule_name": None, "rule_text_id": None, "groups": [SECRET]}],
        [{"rule_text_id": [SECRET], "rule_name": "GitHub Personal Access Token"}],
        [{"rule_text_id": 7, "snippet": {"matching": SECRET}}],
        [{"rule_name": "  ", "snippet": {"matching": SECRET}}],
        {"rule_name": SECRET * 20, "groups": [SECRET]},
    ],
)
def test_malformed_reports_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert SECRET not in str(error.value)
    assert AWS_KEY not in str(error.value)


def test_a_finding_without_a_rule_says_which_fields_it_needs():
    with pytest.raises(OutputShapeError, match="'rule_text_id' or 'rule_name'") as error:
        ADAPTER.parse([REPORT[0], {"rule_name": None, "groups": [SECRET]}])
    assert SECRET not in str(error.value)
