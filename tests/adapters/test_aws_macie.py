"""Amazon Macie sensitive data findings, shaped like the macie2 GetFindings response."""

import copy

import pytest

from llama_mapper.adapters import OutputShapeError, Signal
from llama_mapper.adapters.vendors.aws_macie import AwsMacieAdapter

ADAPTER = AwsMacieAdapter()
KEY = "hr/alice-payroll/2024-salaries.csv"
OWNER = "alice.payroll"
COLUMN = "employee_ssn"

FINDING = {
    "accountId": "111122223333",
    "archived": False,
    "category": "CLASSIFICATION",
    "classificationDetails": {
        "detailedResultsLocation": "s3://macie-results/AWSLogs/111122223333/Macie/x.jsonl.gz",
        "jobArn": "arn:aws:macie2:us-east-1:111122223333:classification-job/3ce05dbb",
        "jobId": "3ce05dbb7ec5505def334104bf3ae77b",
        "originType": "SENSITIVE_DATA_DISCOVERY_JOB",
        "result": {
            "additionalOccurrences": True,
            "customDataIdentifiers": {
                "detections": [
                    {
                        "arn": "arn:aws:macie2:us-east-1:111122223333:custom-data-identifier/6a",
                        "count": 4,
                        "name": "EMPLOYEE_ID",
                        "occurrences": {"lineRanges": [{"start": 2, "end": 2, "startColumn": 9}]},
                    },
                    {"arn": "arn:aws:macie2:us-east-1:111122223333:cdi/7b", "count": 0,
                     "name": "PROJECT_CODE"},
                ],
                "totalCount": 4,
            },
            "mimeType": "text/csv",
            "sensitiveData": [
                {
                    "category": "PERSONAL_INFORMATION",
                    "detections": [
                        {
                            "count": 12,
                            "occurrences": {
                                "cells": [
                                    {"cellReference": None, "column": 3,
                                     "columnName": COLUMN, "row": 2}
                                ]
                            },
                            "type": "USA_SOCIAL_SECURITY_NUMBER",
                        },
                        {"count": "3", "type": "NAME"},
                    ],
                    "totalCount": 15,
                },
                {
                    "category": "CREDENTIALS",
                    "detections": [{"count": 1, "type": "AWS_CREDENTIALS"}],
                    "totalCount": 1,
                },
            ],
            "sizeClassified": 2966026,
            "status": {"code": "COMPLETE"},
        },
    },
    "count": 1,
    "createdAt": "2024-05-01T12:00:00.000Z",
    "description": "The S3 object contains more than one type of sensitive information, "
    "such as personal information and credentials, that was detected by Macie.",
    "id": "90b6d2d8c3c2b6b8d9bfc1a3e6f1c9d2",
    "partition": "aws",
    "region": "us-east-1",
    "resourcesAffected": {
        "s3Bucket": {"name": "acme-hr", "owner": {"displayName": OWNER, "id": "7009a8"}},
        "s3Object": {"key": KEY, "path": f"acme-hr/{KEY}", "size": 2966026,
                     "tags": [{"key": "owner", "value": OWNER}]},
    },
    "sample": False,
    "schemaVersion": "1.0",
    "severity": {"description": "High", "score": 3},
    "title": "The S3 object contains multiple types of sensitive information.",
    "type": "SensitiveData:S3Object/Multiple",
    "updatedAt": "2024-05-01T12:00:00.000Z",
}  # fmt: skip
POLICY_FINDING = {
    "category": "POLICY",
    "policyDetails": {
        "action": {"actionType": "AWS_API_CALL", "apiCallDetails": {"api": "PutBucketAcl"}},
        "actor": {"ipAddressDetails": {"ipAddressV4": "203.0.113.7"},
                  "userIdentity": {"iamUser": {"userName": OWNER}}},
    },
    "type": "Policy:IAMUser/S3BucketPublic",
}  # fmt: skip
EXPECTED = [
    Signal("USA_SOCIAL_SECURITY_NUMBER", 1.0),
    Signal("NAME", 1.0),
    Signal("AWS_CREDENTIALS", 1.0),
    Signal("EMPLOYEE_ID", 1.0),
]


def test_detections_with_a_count_give_their_type_and_custom_names():
    signals = ADAPTER.parse(FINDING)
    assert signals == EXPECTED
    for value in (KEY, OWNER, COLUMN, "alice"):
        assert value not in repr(signals)


def test_location_and_resource_keys_are_declared_raw_text():
    assert {"occurrences", "resourcesAffected", "policyDetails"} <= ADAPTER.raw_text_keys


def test_get_findings_responses_lists_and_events():
    response = {"findings": [FINDING, POLICY_FINDING]}
    assert ADAPTER.parse(response) == EXPECTED
    assert ADAPTER.parse([POLICY_FINDING, FINDING]) == EXPECTED
    event = {"detail-type": "Macie Finding", "source": "aws.macie", "detail": FINDING}
    assert ADAPTER.parse(event) == EXPECTED


def test_nothing_sensitive_means_no_signals():
    assert ADAPTER.parse({"findings": []}) == []
    assert ADAPTER.parse(POLICY_FINDING) == []
    assert ADAPTER.parse({"classificationDetails": {"result": {"status": {}}}}) == []


@pytest.mark.parametrize(
    "output", ["NAME", ["NAME"], {"NAME": 1}, {"detail": {"x": 1}}, [{"type": "NAME"}]]
)
def test_other_shapes_are_left_to_the_generic_parser(output):
    assert ADAPTER.parse(output) is None


def _with_result(result: object) -> dict[str, object]:
    finding = copy.deepcopy(FINDING)
    finding["classificationDetails"]["result"] = result
    return finding


@pytest.mark.parametrize(
    "output",
    [
        {"findings": KEY},
        {"findings": [KEY]},
        {"findings": [FINDING, {"type": "NAME", "resourcesAffected": KEY}]},
        {"classificationDetails": KEY},
        _with_result(KEY),
        _with_result({"sensitiveData": KEY}),
        _with_result({"sensitiveData": [{"detections": KEY}]}),
        _with_result({"sensitiveData": [{"detections": [{"count": 1}]}]}),
        _with_result({"sensitiveData": [{"detections": [{"type": [KEY], "count": 1}]}]}),
        _with_result({"sensitiveData": [{"detections": [{"type": "NAME", "count": -1}]}]}),
        _with_result({"sensitiveData": [{"detections": [{"type": "NAME", "count": KEY}]}]}),
        _with_result({"customDataIdentifiers": {"detections": [{"arn": KEY, "count": 1}]}}),
        _with_result({"customDataIdentifiers": [KEY]}),
    ],
)
def test_malformed_findings_raise_without_echoing_values(output):
    with pytest.raises(OutputShapeError) as error:
        ADAPTER.parse(output)
    assert KEY not in str(error.value)
    assert OWNER not in str(error.value)
