"""Raw content never reaches a sink: responses to errors, metrics, logs, the unmapped file."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from llama_mapper.service import MapperService
from llama_mapper.storage.unmapped_file import UnmappedFile


class AccessCapture(logging.Handler):
    """Collects the access log's lines (that logger writes directly, not through root)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @classmethod
    def attach(cls) -> AccessCapture:
        handler = cls()
        logging.getLogger("llama_mapper.access").addHandler(handler)
        return handler

    def detach(self) -> None:
        logging.getLogger("llama_mapper.access").removeHandler(self)


SECRETS = ["078-05-1120", "alice@example.com", "4111111111111111", "AKIAIOSFODNN7EXAMPLE"]
PROSE = "please transfer the money to account " + " ".join(SECRETS) + " before friday noon ok"


def probes() -> list[dict[str, object]]:
    return [
        {"detector": "presidio", "output": PROSE, "tenant_id": "acme"},
        {
            "detector": "presidio",
            "output": [{"entity_type": PROSE, "score": 0.9}],
            "tenant_id": "a",
        },
        {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme", "metadata": {"n": PROSE}},
        {"detector": "my-scanner", "output": "|".join(SECRETS), "tenant_id": "acme"},
        {
            "detector": "fms-detector",
            "output": [
                [
                    {
                        "start": 0,
                        "end": 11,
                        "text": SECRETS[0],
                        "detection": "SocialSecurity",
                        "detection_type": "pii",
                        "score": 0.99,
                    }
                ]
            ],
            "tenant_id": "a",
        },
        {"detector": "openai-moderation", "output": {"results": PROSE}, "tenant_id": "acme"},
        {"detector": PROSE, "output": "x", "tenant_id": "acme"},
        # Secret scanners' native reports: the secret, the matched line and the author are
        # dropped at the edge; a finding without its rule id is an error that echoes none.
        {
            "detector": "gitleaks",
            "output": [
                {
                    "RuleID": "aws-access-token",
                    "Match": PROSE,
                    "Secret": SECRETS[3],
                    "File": f"home/{SECRETS[1]}/config.py",
                    "Author": SECRETS[1],
                    "Email": SECRETS[1],
                    "Message": PROSE,
                }
            ],
            "tenant_id": "acme",
        },
        {
            "detector": "gitleaks",
            "output": [{"Secret": SECRETS[3], "Match": PROSE}],
            "tenant_id": "a",
        },
        {
            "detector": "trufflehog",
            "output": [
                {
                    "DetectorName": "AWS",
                    "Verified": False,
                    "Raw": SECRETS[3],
                    "RawV2": PROSE,
                    "Redacted": SECRETS[3],
                    "SourceMetadata": {"Data": {"Git": {"email": SECRETS[1], "line": 3}}},
                    "ExtraData": {"message": PROSE},
                    "VerificationError": PROSE,
                }
            ],
            "tenant_id": "acme",
        },
        {"detector": "trufflehog", "output": {"DetectorType": 2, "Raw": PROSE}, "tenant_id": "a"},
        {
            "detector": "aws-macie",
            "output": {
                "findings": [
                    {
                        "classificationDetails": {
                            "result": {
                                "sensitiveData": [
                                    {
                                        "category": "PERSONAL_INFORMATION",
                                        "detections": [
                                            {
                                                "type": "USA_SOCIAL_SECURITY_NUMBER",
                                                "count": 1,
                                                "occurrences": {
                                                    "cells": [{"columnName": SECRETS[0]}]
                                                },
                                            }
                                        ],
                                    }
                                ]
                            }
                        },
                        "description": PROSE,
                        "resourcesAffected": {"s3Object": {"key": SECRETS[1]}},
                    }
                ]
            },
            "tenant_id": "acme",
        },
        # Amazon Comprehend: a PII job output line (its input file name and an echoed
        # entity text are dropped), a malformed entity, and a prompt safety answer whose
        # page errors carry prose.
        {
            "detector": "aws-comprehend",
            "output": {
                "File": f"home/{SECRETS[1]}/notes.txt",
                "Line": 0,
                "Entities": [
                    {
                        "Type": "SSN",
                        "Score": 0.99,
                        "BeginOffset": 0,
                        "EndOffset": 11,
                        "Text": SECRETS[0],
                    }
                ],
            },
            "tenant_id": "acme",
        },
        {
            "detector": "aws-comprehend",
            "output": {"Entities": [{"Type": SECRETS[2], "Score": SECRETS[0]}]},
            "tenant_id": "a",
        },
        {
            "detector": "aws-comprehend",
            "output": {
                "Classes": [{"Name": "UNSAFE_PROMPT", "Score": 0.99}],
                "Errors": [
                    {"Page": 1, "ErrorCode": "INTERNAL_SERVER_ERROR", "ErrorMessage": PROSE}
                ],
            },
            "tenant_id": "acme",
        },
        {
            "detector": "noseyparker",
            "output": [
                {
                    "finding_id": SECRETS[3],
                    "rule_name": "AWS API Key",
                    "rule_text_id": "np.aws.1",
                    "groups": [PROSE],
                    "comment": PROSE,
                    "num_matches": 1,
                    "statuses": [],
                    "matches": [
                        {
                            "blob_id": SECRETS[2],
                            "groups": [PROSE],
                            "snippet": {"before": PROSE, "matching": SECRETS[3], "after": PROSE},
                            "provenance": [
                                {"kind": "file", "path": f"home/{SECRETS[1]}/config.py"},
                                {
                                    "kind": "git_repo",
                                    "repo_path": SECRETS[1],
                                    "first_commit": {
                                        "blob_path": SECRETS[0],
                                        "commit_metadata": {
                                            "author_email": SECRETS[1],
                                            "message": PROSE,
                                        },
                                    },
                                },
                            ],
                            "location": {"offset_span": {"start": 60, "end": 80}},
                            "rule_name": "AWS API Key",
                            "rule_text_id": "np.aws.1",
                            "comment": PROSE,
                        }
                    ],
                },
                # Before v0.17: the rule name only, and the match as match_content.
                {"rule_name": "AWS API Key", "match_content": PROSE, "num_matches": 1},
            ],
            "tenant_id": "acme",
        },
        {
            "detector": "noseyparker",
            "output": [{"groups": [SECRETS[3]], "snippet": {"matching": PROSE}}],
            "tenant_id": "a",
        },
        # Azure AI Language PII: the matched text, the redacted input and the service's
        # messages are dropped; an entity without its category echoes none of them.
        {
            "detector": "azure-ai-language-pii",
            "output": {
                "kind": "PiiEntityRecognitionResults",
                "results": {
                    "documents": [
                        {
                            "id": "1",
                            "redactedText": PROSE,
                            "entities": [
                                {
                                    "text": SECRETS[0],
                                    "category": "USSocialSecurityNumber",
                                    "offset": 38,
                                    "length": 11,
                                    "confidenceScore": 0.85,
                                },
                                {
                                    "text": SECRETS[1],
                                    "category": "Email",
                                    "offset": 50,
                                    "length": 17,
                                    "confidenceScore": 0.8,
                                },
                            ],
                            "warnings": [{"code": "LongWordsInDocument", "message": PROSE}],
                        }
                    ],
                    "errors": [{"id": "2", "error": {"code": "InvalidArgument", "message": PROSE}}],
                    "modelVersion": "2025-11-01",
                },
            },
            "tenant_id": "acme",
        },
        {
            "detector": "azure-ai-language-pii",
            "output": {"documents": [{"redactedText": PROSE, "entities": [{"text": SECRETS[2]}]}]},
            "tenant_id": "a",
        },
    ]


async def test_secrets_reach_no_sink(
    client: httpx.AsyncClient,
    service: MapperService,
    state_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    access = AccessCapture.attach()
    error_texts = []
    for payload in probes():
        response = await client.post("/map", json=payload)
        assert response.status_code < 500
        if response.status_code >= 400:
            error_texts.append(response.text)
    batch = await client.post("/map/batch", json={"requests": probes()})
    assert batch.status_code == 200
    error_texts.extend(str(item) for item in batch.json()["results"] if "error" in item)
    metrics = (await client.get("/metrics")).text
    UnmappedFile.in_state_dir(state_dir).add(service.engine.unmapped.drain())
    unmapped = (state_dir / "unmapped.json").read_text()
    sinks = {
        "errors": "\n".join(error_texts),
        "metrics": metrics,
        "logs": caplog.text,
        "unmapped": unmapped,
    }
    assert error_texts, "the probes must exercise the error paths"
    assert any('"event":"mapping"' in line for line in access.lines), "access log not exercised"
    for name, text in sinks.items():
        for secret in [*SECRETS, "transfer the money"]:
            assert secret not in text, f"{secret!r} leaked into {name}"


def test_fms_matched_text_is_dropped(service: MapperService) -> None:
    payload = service.parse_payload(probes()[4])
    body = service.map_payload(payload, route="test")
    assert SECRETS[0] not in str(body)
    assert body["taxonomy"] == ["PII.Identifier.SSN"]


@pytest.mark.parametrize(
    ("index", "taxonomy"),
    [
        (7, ["SECRET.CloudCredential.AWS"]),
        (9, None),
        (11, ["PII.Identifier.SSN"]),
        (12, ["PII.Identifier.SSN"]),
        (14, ["OTHER.PolicyViolation"]),
        (15, ["SECRET.CloudCredential.AWS"]),
        (17, ["PII.Identifier.SSN", "PII.Contact.Email"]),
    ],
)
def test_secret_scanner_reports_map_without_their_content(
    service: MapperService, index: int, taxonomy: list[str] | None
) -> None:
    payload = service.parse_payload(probes()[index])
    body = service.map_payload(payload, route="test")
    for secret in [*SECRETS, "transfer the money"]:
        assert secret not in str(body)
    if taxonomy is None:  # trufflehog: its pack lands separately
        assert body["taxonomy"]
    else:
        assert body["taxonomy"] == taxonomy


async def test_access_log_adds_vendor_labels_only_outside_privacy_mode(
    service: MapperService, caplog: pytest.LogCaptureFixture
) -> None:
    from llama_mapper.api.app import create_app

    payload = {"detector": "presidio", "output": "US_SSN|ZODIAC_SIGN", "tenant_id": "acme"}
    for mode in (True, False):
        service.settings.privacy.mode = mode
        app = create_app(service.settings, service=service)
        access = AccessCapture.attach()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as http:
            assert (await http.post("/map", json=payload)).status_code == 200
        access.detach()
        line = access.lines[-1]
        assert '"unmapped":1' in line
        assert ("ZODIAC_SIGN" in line) is (not mode)
