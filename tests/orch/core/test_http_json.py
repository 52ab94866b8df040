"""The generic JSON-over-HTTP detector against a loopback service: request template,
response path, spans with renamed fields, dropped quoting keys, credentials by secret name."""

from __future__ import annotations

import pytest
from tests.orch.core.servers import DetectorServer

from detector_orchestration.clients.http_base import AuthHeader, shared_http_client
from detector_orchestration.clients.http_json import HttpJsonDetector
from detector_orchestration.detectors.base import DetectorError, Span
from llama_mapper.secrets import EnvSecretProvider, env_var_name


def _detector(url: str, http, **kwargs) -> HttpJsonDetector:  # type: ignore[no-untyped-def]
    return HttpJsonDetector(
        name="generic",
        url=url + "/json",
        pack="regex-pii",
        http=http,
        request_template={"input": {"text": "{{content}}", "kind": "{{content_type}}"}, "v": 2},
        response_path="result.labels",
        spans_path="matches",
        span_fields={"start": "begin", "end": "finish", "label": "kind", "score": "confidence"},
        **kwargs,
    )


async def test_template_paths_and_spans(detectors: DetectorServer) -> None:
    url = detectors.set("gen")
    http = shared_http_client()
    try:
        output = await _detector(url, http).detect("mail a@b.io now", "text/plain")
        wrong = _detector(url, http)
        wrong.response_path = "result.missing"
        with pytest.raises(DetectorError, match="unexpected response shape") as caught:
            await wrong.detect("mail a@b.io", "text/plain")
    finally:
        await http.aclose()
    assert detectors.bodies[0] == {
        "input": {"text": "mail a@b.io now", "kind": "text/plain"},
        "v": 2,
    }
    assert output.output == [{"label": "email", "score": 0.9}]
    assert output.spans == (Span(5, 11, "email", 0.9),)
    assert caught.value.retryable is False
    assert "a@b.io" not in str(caught.value)


async def test_credentials_come_from_the_secret_provider(
    detectors: DetectorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = detectors.set("gen", "unauthorized", token="s3cret-token")
    monkeypatch.setenv(env_var_name("gen_token"), "s3cret-token")
    secrets = EnvSecretProvider()
    http = shared_http_client()
    try:
        good = _detector(url, http, auth=AuthHeader(secrets, "gen_token"))
        assert (await good.detect("x", "text/plain")).output == []
        bad = _detector(url, http, auth=AuthHeader(secrets, "missing_token"))
        with pytest.raises(DetectorError, match="credential is unavailable"):
            await bad.detect("x", "text/plain")
        anonymous = _detector(url, http)
        with pytest.raises(DetectorError, match="HTTP 401") as caught:
            await anonymous.detect("x", "text/plain")
    finally:
        await http.aclose()
    assert caught.value.retryable is False
    assert detectors.headers[0]["authorization"] == "Bearer s3cret-token"


async def test_drop_keys_remove_echoed_text(detectors: DetectorServer) -> None:
    url = detectors.set("gen")
    http = shared_http_client()
    try:
        whole = HttpJsonDetector(
            name="generic",
            url=url + "/json",
            pack="regex-pii",
            http=http,
            request_template={"input": {"text": "{{content}}"}},
            drop_keys=["echo", "matches"],
        )
        output = await whole.detect("hello a@b.io", "text/plain")
    finally:
        await http.aclose()
    assert output.output == {"result": {"labels": [{"label": "email", "score": 0.9}]}}
