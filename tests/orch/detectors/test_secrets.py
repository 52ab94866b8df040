"""secrets: detect-secrets plugins in-process, the report the mapper pack reads, and spans."""

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_orchestration.detectors import Detector, DetectorError
from detector_orchestration.detectors.builtin.secrets import SecretsDetector
from detector_orchestration.detectors.builtin.secrets.scanner import scan

AWS = "AKIAIOSFODNN7EXAMPLE"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
    "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
GITHUB = "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"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234567890abcdefghij\n"
    "-----END RSA PRIVATE KEY-----"
)
CONTENT = f"""here is my config
aws_access_key_id = {AWS}
{PEM}
token {JWT}
gh: {GITHUB}
slack {SLACK}
stripe {STRIPE}
curl https://admin:hunter2secret@example.com/
password = "Xk9#mP2$vL7qR4!z"
"""
VALUES = [AWS, JWT, GITHUB, SLACK, STRIPE, "hunter2secret", "Xk9#mP2$vL7qR4!z", "MIIEpAIBAAKC"]


def spans_by_type(text):
    return {(f.secret_type, text[f.start : f.end]) for f in scan(text)}


@pytest.mark.parametrize(
    ("secret_type", "value"),
    [
        ("AWS Access Key", AWS),
        ("JSON Web Token", JWT),
        ("GitHub Token", GITHUB),
        ("Slack Token", SLACK),
        ("Stripe Access Key", STRIPE),
        ("Basic Auth Credentials", "hunter2secret"),
        ("Secret Keyword", "Xk9#mP2$vL7qR4!z"),
    ],
)
def test_each_plugin_finds_its_secret_with_an_exact_span(secret_type, value):
    assert (secret_type, value) in spans_by_type(CONTENT)


def test_private_key_span_covers_the_whole_block():
    found = [f for f in scan(CONTENT) if f.secret_type == "Private Key"]
    assert len(found) == 1
    covered = CONTENT[found[0].start : found[0].end]
    assert "MIIEpAIBAAKC" in covered
    assert covered.endswith("-----END RSA PRIVATE KEY-----")


def test_high_entropy_strings_count_only_near_a_keyword():
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
    assert scan(f"commit {digest} fixed the build") == []
    near = scan(f"api_token: {digest}")
    assert any(f.secret_type == "Hex High Entropy String" for f in near)
    every = scan(f"commit {digest} fixed the build", entropy_needs_keyword=False)
    assert [f.secret_type for f in every] == ["Hex High Entropy String"]


def test_prose_has_no_secrets():
    text = "The weather is nice today and I like long walks on the beach.\n" * 20
    assert scan(text) == []


async def test_output_is_a_detect_secrets_report_without_secret_values(service):
    detector = SecretsDetector()
    assert isinstance(detector, Detector)
    result = await detector.detect(CONTENT, "text/plain")
    report = result.output
    assert set(report) == {"version", "plugins_used", "filters_used", "results", "generated_at"}
    entries = report["results"]["content"]
    assert all(set(e) == {"type", "filename", "is_verified", "line_number"} for e in entries)
    assert "hashed_secret" not in str(report)
    for value in VALUES:
        assert value not in str(report)
    assert {e["line_number"] for e in entries if e["type"] == "AWS Access Key"} == {2}
    assert {p["name"] for p in report["plugins_used"]} >= {"AWSKeyDetector", "KeywordDetector"}
    for span in result.spans:
        assert 0 <= span.start < span.end <= len(CONTENT)
        assert span.score == 1.0

    payload = service.parse_payload(
        {"detector": "detect-secrets", "output": report, "tenant_id": "t"}
    )
    body = service.map_payload(payload, route="test")
    assert set(body["taxonomy"]) >= {
        "SECRET.CloudCredential.AWS",
        "SECRET.PrivateKey",
        "SECRET.AccessToken.JWT",
        "SECRET.AccessToken",
        "SECRET.APIKey",
        "SECRET.Password",
    }
    assert body["provenance"]["unmapped_labels"] == []


async def test_no_findings_is_an_empty_report(service):
    result = await SecretsDetector().detect("nothing to see here", "text/plain")
    assert result.output["results"] == {}
    assert result.spans == ()
    payload = service.parse_payload(
        {"detector": "detect-secrets", "output": result.output, "tenant_id": "t"}
    )
    # No signal at all is the mapper's "nothing found" verdict.
    assert service.map_payload(payload, route="test")["taxonomy"] == ["OTHER.Safe"]


async def test_large_content_is_scanned_in_a_thread():
    text = ("ordinary line of text\n" * 200) + f"aws_access_key_id = {AWS}\n"
    result = await SecretsDetector().detect(text, "text/plain")
    assert [e["line_number"] for e in result.output["results"]["content"]] == [201]
    assert text[result.spans[0].start : result.spans[0].end] == AWS


async def test_secret_values_never_reach_the_logs(caplog):
    with caplog.at_level(logging.DEBUG):
        await SecretsDetector().detect(CONTENT, "text/plain")
    for value in VALUES:
        assert value not in caplog.text


async def test_unsupported_content_type():
    with pytest.raises(DetectorError) as error:
        await SecretsDetector().detect("x", "application/octet-stream")
    assert not error.value.retryable


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_and_spans_are_within_bounds(text):
    for finding in scan(text):
        assert 0 <= finding.start <= finding.end <= len(text)
        assert finding.line_number >= 1
