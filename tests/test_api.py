"""HTTP contract: responses, every error path, legacy shape, batch, overlays."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from llama_mapper.api.app import create_app
from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import load_settings
from llama_mapper.service import MapperService

OPENAI_RESPONSE = {
    "id": "modr-970d409ef3bef3b70c73d8232df86e7d",
    "model": "omni-moderation-latest",
    "results": [
        {
            "flagged": True,
            "categories": {"harassment": True, "violence": True, "sexual": False},
            "category_scores": {"harassment": 0.81, "violence": 0.93, "sexual": 0.001},
        }
    ],
}
ERROR_KEYS = {"error_code", "message", "request_id", "retryable"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["error_code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_map_vendor_response(client: httpx.AsyncClient, catalog: Catalog) -> None:
    payload = {"detector": "openai-moderation", "output": OPENAI_RESPONSE, "tenant_id": "acme"}
    response = await client.post("/map", json=payload)
    assert response.status_code == 200
    body = response.json()
    assert body["taxonomy"] == ["HARM.VIOLENCE.Physical", "HARM.SPEECH.Harassment"]
    assert body["scores"] == {"HARM.VIOLENCE.Physical": 0.93, "HARM.SPEECH.Harassment": 0.81}
    assert body["confidence"] == 1.0
    assert all(label in catalog.taxonomy for label in body["taxonomy"])
    assert set(body["frameworks"]) == set(body["taxonomy"])
    provenance = body["provenance"]
    assert provenance["detector"] == "openai-moderation"
    assert provenance["vendor"] == "OpenAI"
    assert provenance["tenant_id"] == "acme"
    assert provenance["route"] == "/map"
    assert provenance["method"] == {
        "HARM.VIOLENCE.Physical": "exact",
        "HARM.SPEECH.Harassment": "exact",
    }
    assert provenance["request_id"] == response.headers["x-request-id"]
    assert body["version_info"]["taxonomy"] == "2026.11"
    assert body["version_info"]["detector_pack"] == "openai-moderation@2026.11.0"
    assert body["version_info"]["model"] == "rules-only"


async def test_client_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/map",
        json={"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"},
        headers={"X-Request-ID": "trace-123"},
    )
    assert response.headers["x-request-id"] == "trace-123"
    assert response.json()["provenance"]["request_id"] == "trace-123"


async def test_legacy_detector_request_is_answered_with_deprecation(
    client: httpx.AsyncClient, service: MapperService
) -> None:
    response = await client.post("/map", json={"detector": "deberta-toxicity", "output": "toxic"})
    assert response.status_code == 200
    assert response.headers["deprecation"].startswith("@")
    assert "GMT" in response.headers["sunset"]
    assert response.json()["provenance"]["tenant_id"] == "default"
    assert service.legacy_requests == 1
    metrics = (await client.get("/metrics")).text
    assert "mapper_legacy_requests_total 1.0" in metrics


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "INVALID_JSON"),
        (b'{"detector": "x"}', {"content-type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"detector": "x"}', {}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"[]", {"content-type": "application/json"}, 422, "INVALID_REQUEST"),
        (
            b'{"detector": "x", "output": {"a": 1}}',
            {"content-type": "application/json"},
            422,
            "INVALID_REQUEST",
        ),
        (
            b'{"detector": "../etc", "output": "a", "tenant_id": "t"}',
            {"content-type": "application/json"},
            422,
            "INVALID_REQUEST",
        ),
        (
            b'{"detector": "x", "output": "a", "tenant_id": "t", "extra": 1}',
            {"content-type": "application/json"},
            422,
            "INVALID_REQUEST",
        ),
        (
            b'{"detector": "openai-moderation", "output": {"results": "nope"}, "tenant_id": "t"}',
            {"content-type": "application/json"},
            422,
            "INVALID_DETECTOR_OUTPUT",
        ),
        (
            b'{"detector": "x", "output": "", "tenant_id": "t"}',
            {"content-type": "application/json"},
            422,
            "INVALID_DETECTOR_OUTPUT",
        ),
    ],
)
async def test_client_mistakes_get_the_error_body(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = await client.post("/map", content=content, headers=headers)
    assert_error(response, status, code)


async def test_payload_size_limit_by_header_and_by_stream(client: httpx.AsyncClient) -> None:
    big = b'{"detector": "x", "output": ["' + b"a" * (70 * 1024) + b'"], "tenant_id": "t"}'
    declared = await client.post("/map", content=big, headers={"content-type": "application/json"})
    assert_error(declared, 413, "PAYLOAD_TOO_LARGE")

    async def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(80):
            yield b" " * 1024

    streamed = await client.post(
        "/map", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(streamed, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("Dear team, please find attached the quarterly report " * 3, "free text"),
        ("line one\nline two\nline three\nline four\nline five", "multi-line"),
        (
            {
                "label": "x",
                "blob": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5",
            },
            "encoded blob",
        ),
        ({"label": "x" * 600}, "longer than"),
    ],
)
async def test_raw_content_guard(client: httpx.AsyncClient, output: object, reason: str) -> None:
    payload = {"detector": "generic", "output": output, "tenant_id": "acme"}
    response = await client.post("/map", json=payload)
    body = assert_error(response, 400, "RAW_CONTENT_REJECTED")
    assert reason in str(body["message"])
    assert "quarterly" not in response.text
    assert "QUJD" not in response.text


async def test_raw_content_in_metadata_is_refused(client: httpx.AsyncClient) -> None:
    payload = {
        "detector": "presidio",
        "output": "US_SSN",
        "tenant_id": "acme",
        "metadata": {"note": "customer wrote: my ssn is 078-05-1120 and I live at 1 Main St " * 2},
    }
    response = await client.post("/map", json=payload)
    assert_error(response, 400, "RAW_CONTENT_REJECTED")
    assert "078-05-1120" not in response.text


async def test_vendor_raw_text_fields_are_dropped_not_refused(client: httpx.AsyncClient) -> None:
    bedrock = {
        "action": "GUARDRAIL_INTERVENED",
        "outputs": [{"text": "Sorry, the model cannot answer this question. " * 4}],
        "assessments": [
            {
                "sensitiveInformationPolicy": {
                    "piiEntities": [
                        {"match": "alice@example.com", "type": "EMAIL", "action": "ANONYMIZED"}
                    ]
                }
            }
        ],
    }
    payload = {"detector": "bedrock-guardrails", "output": bedrock, "tenant_id": "acme"}
    response = await client.post("/map", json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["taxonomy"] == ["PII.Contact.Email"]
    assert "alice@example.com" not in response.text


async def test_unknown_routes_and_methods(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/nope"), 404, "NOT_FOUND")
    response = await client.get("/map")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["allow"]


async def test_batch_maps_in_order_and_isolates_item_errors(client: httpx.AsyncClient) -> None:
    requests = [
        {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"},
        {"detector": "presidio"},
        {"detector": "openai-moderation", "output": {"results": 5}, "tenant_id": "acme"},
        {"detector": "llama-guard", "output": "unsafe\nS1,S10", "tenant_id": "acme"},
        {"detector": "deberta-toxicity", "output": "toxic"},
    ]
    response = await client.post("/map/batch", json={"requests": requests})
    assert response.status_code == 200
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (3, 2)
    results = body["results"]
    assert results[0]["taxonomy"] == ["PII.Identifier.SSN"]
    assert results[1]["error"]["error_code"] == "INVALID_REQUEST"
    assert results[2]["error"]["error_code"] == "INVALID_DETECTOR_OUTPUT"
    assert set(results[3]["taxonomy"]) == {"HARM.VIOLENCE.Physical", "HARM.SPEECH.Hate.Other"}
    assert results[4]["provenance"]["tenant_id"] == "default"
    request_id = response.headers["x-request-id"]
    assert results[1]["error"]["request_id"] == f"{request_id}.1"


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/map/batch", json={"requests": []}), 422, "INVALID_REQUEST")
    item = {"detector": "presidio", "output": "US_SSN", "tenant_id": "a"}
    too_many = await client.post("/map/batch", json={"requests": [item] * 1001})
    assert_error(too_many, 422, "BATCH_TOO_LARGE")


async def test_health_ready_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = (await client.get("/ready")).json()
    assert ready["status"] == "ready"
    assert "rules-only" in ready["checks"]["learned_tier"]
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert {"/map", "/map/batch", "/health", "/ready"} <= set(spec["paths"])
    assert "ErrorBody" in spec["components"]["schemas"]
    assert (await client.get("/docs")).status_code == 200


async def test_tenant_overlay_applies_per_request(
    tmp_path: Path, state_dir: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "strict.yaml").write_text(
        "mapping:\n  detector_thresholds:\n    openai-moderation: 0.95\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text("environment: test\n")
    settings = load_settings(config)
    service = MapperService(settings, catalog, overlay_root=settings.overlay_root(config))
    app = create_app(settings, service=service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as c:
        for tenant, expected in [
            ("strict", ["OTHER.Safe"]),
            ("relaxed", ["HARM.VIOLENCE.Physical"]),
        ]:
            payload = {
                "detector": "openai-moderation",
                "output": {"violence": 0.9},
                "tenant_id": tenant,
            }
            response = await c.post("/map", json=payload)
            assert response.json()["taxonomy"] == expected, tenant
        # A broken overlay is the operator's problem: 503, never a 500, other tenants unaffected.
        (tmp_path / "tenants" / "broken.yaml").write_text("mapping: {default_threshold: high}\n")
        payload = {"detector": "presidio", "output": "US_SSN", "tenant_id": "broken"}
        assert_error(await c.post("/map", json=payload), 503, "CONFIGURATION_ERROR")


async def test_legacy_shape_can_be_retired(
    state_dir: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_MAPPER_LEGACY__ACCEPT_DETECTOR_REQUEST", "false")
    settings = load_settings()
    app = create_app(settings, service=MapperService(settings, catalog))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as c:
        response = await c.post("/map", json={"detector": "deberta-toxicity", "output": "toxic"})
        assert_error(response, 422, "DEPRECATED_REQUEST_SHAPE")
        modern = {"detector": "deberta-toxicity", "output": "toxic", "tenant_id": "acme"}
        assert (await c.post("/map", json=modern)).status_code == 200


async def test_validation_errors_never_echo_invented_field_names(client: httpx.AsyncClient) -> None:
    prose_key = "my ssn is 078-05-1120"
    body = {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme", prose_key: 1}
    response = await client.post("/map", json=body)
    assert_error(response, 422, "INVALID_REQUEST")
    assert "078-05-1120" not in response.text
    assert "<field>" in response.json()["message"]
    batch = await client.post("/map/batch", json={"requests": [{prose_key: 1}]})
    assert "078-05-1120" not in batch.text
    # Identifier-shaped keys too: a one-word key may be a token.
    token_key = "AKIAIOSFODNN7EXAMPLE"
    single = {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme", token_key: 1}
    for route, sent in (("/map", single), ("/map/batch", {"requests": [{token_key: 1}]})):
        answer = await client.post(route, json=sent)
        assert token_key not in answer.text, route
        assert "<field>" in answer.text, route


GITLEAKS_SECRET = "AKIAQYLPMN5HFIQR7XZK"
TRUFFLEHOG_SECRET = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
SCANNER_AUTHOR_EMAIL = "alice.payroll@example.com"
NATIVE_SCANNER_OUTPUTS = {
    "gitleaks": [
        {
            "RuleID": "aws-access-token",
            "Description": "Identified a pattern that may indicate AWS credentials, risking "
            "unauthorized cloud resource access and data breaches on AWS platforms.",
            "StartLine": 3,
            "EndLine": 3,
            "StartColumn": 21,
            "EndColumn": 40,
            "Match": f"aws_access_key_id = {GITLEAKS_SECRET}",
            "Secret": GITLEAKS_SECRET,
            "File": "home/alice/settings.py",
            "SymlinkFile": "",
            "Commit": "4f3c2a1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
            "Entropy": 3.85,
            "Author": "Alice Payroll",
            "Email": SCANNER_AUTHOR_EMAIL,
            "Date": "2024-05-01T12:00:00Z",
            "Message": f"add {GITLEAKS_SECRET} for the payroll export\n\nwith a long body",
            "Tags": [],
            "Fingerprint": "4f3c2a1:home/alice/settings.py:aws-access-token:3",
        }
    ],
    "trufflehog": [
        {
            "SourceMetadata": {
                "Data": {"Git": {"file": "home/alice/settings.py", "email": SCANNER_AUTHOR_EMAIL}}
            },
            "SourceID": 1,
            "SourceType": 16,
            "SourceName": "trufflehog - git",
            "DetectorType": 17,
            "DetectorName": "Stripe",
            "DetectorDescription": "Stripe is a payment processing platform. Stripe API keys "
            "can be used to access and manage payment data and perform transactions.",
            "DecoderName": "PLAIN",
            "Verified": True,
            "Raw": TRUFFLEHOG_SECRET,
            "RawV2": "",
            "Redacted": "sk_live_4eC3****",
            "ExtraData": None,
            "StructuredData": None,
        }
    ],
    "noseyparker": [
        {
            "comment": None,
            "finding_id": "d551329ba5578559646aa49467be47e9d496578d",
            "groups": ["QUtJQVFZTFBNTjVIRklRUjdYWks="],
            "matches": [
                {
                    "blob_id": "bef17e1f92978931020b423cfcfb6f1e7381d559",
                    "blob_metadata": {
                        "charset": None,
                        "id": "bef17e1f92978931020b423cfcfb6f1e7381d559",
                        "mime_essence": "text/x-python",
                        "num_bytes": 104,
                    },
                    "comment": None,
                    "groups": ["QUtJQVFZTFBNTjVIRklRUjdYWks="],
                    "location": {
                        "offset_span": {"end": 80, "start": 60},
                        "source_span": {
                            "end": {"column": 28, "line": 3},
                            "start": {"column": 9, "line": 3},
                        },
                    },
                    "provenance": [
                        {
                            "kind": "git_repo",
                            "repo_path": "/home/alice/payroll/.git",
                            "first_commit": {
                                "blob_path": "home/alice/settings.py",
                                "commit_metadata": {
                                    "commit_id": "4f3c2a1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
                                    "author_name": "Alice Payroll",
                                    "author_email": SCANNER_AUTHOR_EMAIL,
                                    "author_timestamp": "1714564800 +0000",
                                    "committer_name": "Alice Payroll",
                                    "committer_email": SCANNER_AUTHOR_EMAIL,
                                    "committer_timestamp": "1714564800 +0000",
                                    "message": f"add {GITLEAKS_SECRET} for the payroll export"
                                    "\n\nwith a long body",
                                },
                            },
                        }
                    ],
                    "redundant_to": [],
                    "rule_name": "AWS API Key",
                    "rule_structural_id": "f6c4fca24a1c7f275d51d2718a1585ca6e4ae664",
                    "rule_text_id": "np.aws.1",
                    "score": None,
                    "snippet": {
                        "after": "\n",
                        "before": "# payroll export settings\nUSERNAME=alice\nAWS_KEY=",
                        "matching": GITLEAKS_SECRET,
                    },
                    "status": None,
                    "structural_id": "155cdfa3e16d6abc09ecb8a2f659c2f84f7b91fc",
                }
            ],
            "mean_score": None,
            "num_matches": 1,
            "num_redundant_matches": 0,
            "rule_name": "AWS API Key",
            "rule_structural_id": "f6c4fca24a1c7f275d51d2718a1585ca6e4ae664",
            "rule_text_id": "np.aws.1",
            "statuses": [],
        }
    ],
    "aws-macie": {
        "findings": [
            {
                "category": "CLASSIFICATION",
                "classificationDetails": {
                    "result": {
                        "sensitiveData": [
                            {
                                "category": "CREDENTIALS",
                                "detections": [{"type": "AWS_CREDENTIALS", "count": 2}],
                                "totalCount": 2,
                            }
                        ],
                        "customDataIdentifiers": {"detections": [], "totalCount": 0},
                    }
                },
                "description": "The S3 object contains credentials data, such as AWS secret "
                "access keys or private keys, that was detected by Amazon Macie.",
                "resourcesAffected": {"s3Object": {"key": "home/alice/settings.py"}},
                "type": "SensitiveData:S3Object/Credentials",
            }
        ]
    },
}


@pytest.mark.parametrize("detector", sorted(NATIVE_SCANNER_OUTPUTS))
async def test_secret_scanner_reports_map_without_their_secrets(
    client: httpx.AsyncClient, catalog: Catalog, detector: str
) -> None:
    payload = {"detector": detector, "output": NATIVE_SCANNER_OUTPUTS[detector], "tenant_id": "a"}
    response = await client.post("/map", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    for value in (GITLEAKS_SECRET, TRUFFLEHOG_SECRET, SCANNER_AUTHOR_EMAIL, "alice"):
        assert value not in response.text
    assert catalog.packs.get(detector) is not None
    if detector == "trufflehog":  # a verified Stripe key
        assert body["taxonomy"] == ["SECRET.APIKey"]
        assert body["scores"] == {"SECRET.APIKey": 1.0}
    else:
        assert body["taxonomy"] == ["SECRET.CloudCredential.AWS"]
        assert set(body["scores"].values()) == {1.0}


COMPREHEND_SSN = "078-05-1120"
COMPREHEND_OUTPUTS = {
    # DetectPiiEntities, as a PII job output line: the input file name is dropped at the
    # edge, and so is the entity text should a neighbouring shape echo it.
    "pii": (
        {
            "File": "hr/alice-payroll.txt",
            "Line": 0,
            "Entities": [
                {"Score": 0.9999, "Type": "NAME", "BeginOffset": 0, "EndOffset": 13},
                {"Score": 0.9921, "Type": "SSN", "BeginOffset": 20, "EndOffset": 31,
                 "Text": COMPREHEND_SSN},
                {"Score": 0.31, "Type": "DATE_TIME", "BeginOffset": 40, "EndOffset": 46},
            ],
        },
        {"PII.Person.Name": 0.9999, "PII.Identifier.SSN": 0.9921},
    ),
    "contains-pii": (
        {"Labels": [{"Name": "AWS_SECRET_KEY", "Score": 0.97}]},
        {"SECRET.CloudCredential.AWS": 0.97},
    ),
    "toxic": (
        {
            "ResultList": [
                {
                    "Labels": [
                        {"Name": "PROFANITY", "Score": 0.0004},
                        {"Name": "HATE_SPEECH", "Score": 0.0151},
                        {"Name": "INSULT", "Score": 0.8547},
                        {"Name": "GRAPHIC", "Score": 0.0001},
                        {"Name": "HARASSMENT_OR_ABUSE", "Score": 0.2111},
                        {"Name": "SEXUAL", "Score": 0.0389},
                        {"Name": "VIOLENCE_OR_THREAT", "Score": 0.0067},
                    ],
                    "Toxicity": 0.8209,
                }
            ]
        },
        {"HARM.SPEECH.Insult": 0.8547, "HARM.SPEECH.Toxicity": 0.8209},
    ),
    "prompt-safety": (
        {"Classes": [{"Name": "UNSAFE_PROMPT", "Score": 0.9964},
                     {"Name": "SAFE_PROMPT", "Score": 0.0036}]},
        {"OTHER.PolicyViolation": 0.9964},
    ),
}  # fmt: skip


@pytest.mark.parametrize("shape", sorted(COMPREHEND_OUTPUTS))
async def test_amazon_comprehend_responses_map_natively(
    client: httpx.AsyncClient, catalog: Catalog, shape: str
) -> None:
    output, scores = COMPREHEND_OUTPUTS[shape]
    payload = {"detector": "aws-comprehend", "output": output, "tenant_id": "acme"}
    response = await client.post("/map", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scores"] == scores
    assert set(body["taxonomy"]) == set(scores)
    assert all(label in catalog.taxonomy for label in body["taxonomy"])
    assert body["version_info"]["detector_pack"].startswith("aws-comprehend@")
    for value in (COMPREHEND_SSN, "alice"):
        assert value not in response.text


async def test_cloudflare_dlp_log_names_map_as_plain_labels(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    # Gateway HTTP logs name the matched profile and entries; Cloudflare documents no JSON
    # record carrying those names, so they arrive as plain labels (the generic adapter).
    names = ["Financial Information", "Visa Card Number", "CVV Card Number (labeled)"]
    payload = {"detector": "cloudflare-dlp", "output": names, "tenant_id": "acme"}
    response = await client.post("/map", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["taxonomy"] == ["PII.Identifier.CreditCard", "PII.Other"]
    assert set(body["scores"].values()) == {1.0}
    assert body["version_info"]["detector_pack"] == "cloudflare-dlp@2026.12.0"

    # Every name the pack maps passes the raw-content guard and maps to a known label.
    pack = catalog.packs.get("cloudflare-dlp")
    assert pack is not None
    payload = {"detector": "cloudflare-dlp", "output": sorted(pack.maps), "tenant_id": "acme"}
    response = await client.post("/map", json=payload)
    assert response.status_code == 200, response.text
    assert "OTHER.Unknown" not in response.json()["taxonomy"]


AZURE_PII_SSN = "859-98-0987"
AZURE_PII_TEXT = (
    f"Dear clinic, this is Alice Payroll, my SSN is {AZURE_PII_SSN} and you can reach me at "
    f"{SCANNER_AUTHOR_EMAIL} any weekday after five in the evening"
)
AZURE_PII_RESPONSE = {
    "kind": "PiiEntityRecognitionResults",
    "results": {
        "documents": [
            {
                "id": "1",
                "redactedText": AZURE_PII_TEXT.replace(AZURE_PII_SSN, "*" * 11),
                "entities": [
                    {"text": "Alice Payroll", "category": "Person", "offset": 21,
                     "length": 13, "confidenceScore": 0.98},
                    {"text": AZURE_PII_SSN, "category": "USSocialSecurityNumber",
                     "offset": 46, "length": 11, "confidenceScore": 0.85},
                    {"text": SCANNER_AUTHOR_EMAIL, "category": "Email", "offset": 80,
                     "length": 25, "confidenceScore": 0.8},
                    {"text": "five", "category": "DateTime", "subcategory": "Date",
                     "offset": 130, "length": 4, "confidenceScore": 0.2},
                ],
                "warnings": [{"code": "LongWordsInDocument", "message": AZURE_PII_TEXT}],
            }
        ],
        "errors": [],
        "modelVersion": "2025-11-01",
    },
}  # fmt: skip


async def test_azure_language_pii_response_maps_without_its_text(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    payload = {"detector": "azure-ai-language-pii", "output": AZURE_PII_RESPONSE, "tenant_id": "a"}
    response = await client.post("/map", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["taxonomy"] == [
        "PII.Person.Name",
        "PII.Identifier.SSN",
        "PII.Contact.Email",
        "PII.Other",
    ]
    assert body["scores"]["PII.Identifier.SSN"] == 0.85
    assert body["provenance"]["vendor"] == "Microsoft"
    assert body["provenance"]["unmapped_labels"] == []
    assert catalog.packs.get("azure-ai-language-pii") is not None
    for value in (AZURE_PII_SSN, SCANNER_AUTHOR_EMAIL, "Alice", "clinic"):
        assert value not in response.text
    # The same response without an entity's category: a clear 422 that echoes nothing.
    broken = {"documents": [{"id": "1", "entities": [{"text": AZURE_PII_SSN, "offset": 46}]}]}
    answer = await client.post("/map", json={**payload, "output": broken})
    message = assert_error(answer, 422, "INVALID_DETECTOR_OUTPUT")["message"]
    assert "category" in str(message)
    assert AZURE_PII_SSN not in answer.text
