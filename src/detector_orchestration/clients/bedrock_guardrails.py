"""Amazon Bedrock ``ApplyGuardrail`` for the ``bedrock-guardrails`` pack, signed with SigV4.

``POST https://bedrock-runtime.{region}.amazonaws.com/guardrail/{id}/version/{version}/apply``
with ``{"source": "INPUT"|"OUTPUT", "content": [{"text": {"text": <content>}}],
"outputScope": "INTERVENTIONS"|"FULL"}``, signed by botocore's SigV4 signer for the service
signing name ``bedrock``. The answer is ``{"usage", "action", "actionReason", "outputs":
[{"text"}], "assessments": [...], "guardrailCoverage"}``.

``outputs[].text`` is the guardrail's masked or blocking message, which can carry the rest of
the user's content, and each ``match`` field is the matched word or PII: both are removed
before the answer leaves the client. The pack reads only the assessments.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from detector_orchestration.clients._vendor import (
    DEFAULT_TIMEOUT_S,
    SecretRef,
    VendorHttp,
    require_object,
)
from detector_orchestration.detectors.base import DetectorOutput

SIGNING_NAME = "bedrock"
_RAW_TEXT_KEYS = frozenset({"match", "text", "naturalLanguage"})


class BedrockGuardrailsDetector:
    pack = "bedrock-guardrails"
    content_types = frozenset({"text/plain", "text/markdown", "text/html", "application/json"})

    def __init__(
        self,
        guardrail_id: str,
        guardrail_version: str,
        region: str,
        access_key_id: SecretRef,
        secret_access_key: SecretRef,
        *,
        session_token: SecretRef | None = None,
        name: str = "bedrock-guardrails",
        source: str = "INPUT",
        output_scope: str = "INTERVENTIONS",
        endpoint: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.version = f"bedrock-guardrails@{guardrail_version}"
        self.region = region
        base = endpoint or f"https://bedrock-runtime.{region}.amazonaws.com"
        self.url = (
            f"{base.rstrip('/')}/guardrail/{quote(guardrail_id, safe='')}"
            f"/version/{quote(guardrail_version, safe='')}/apply"
        )
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.source = source
        self.output_scope = output_scope
        self.http = VendorHttp(name, client, timeout_s)

    def signed_headers(self, body: bytes) -> dict[str, str]:
        """SigV4 headers (``Authorization``, ``X-Amz-Date``, token) for one POST of ``body``."""
        credentials = Credentials(
            self.access_key_id.resolve(self.name),
            self.secret_access_key.resolve(self.name),
            self.session_token.resolve(self.name) if self.session_token else None,
        )
        request = AWSRequest(
            method="POST",
            url=self.url,
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        SigV4Auth(credentials, SIGNING_NAME, self.region).add_auth(request)
        return dict(request.headers.items())

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        body = orjson.dumps(
            {
                "source": self.source,
                "content": [{"text": {"text": content}}],
                "outputScope": self.output_scope,
            }
        )
        answer = await self.http.post_json(
            self.url, content=body, headers=self.signed_headers(body)
        )
        return DetectorOutput(output=without_raw_text(require_object(self.name, answer, "action")))

    async def aclose(self) -> None:
        await self.http.aclose()


def without_raw_text(value: Any) -> Any:
    """A copy of the answer without the fields that quote the content."""
    if isinstance(value, dict):
        return {k: without_raw_text(v) for k, v in value.items() if k not in _RAW_TEXT_KEYS}
    if isinstance(value, list):
        return [without_raw_text(item) for item in value]
    return value
