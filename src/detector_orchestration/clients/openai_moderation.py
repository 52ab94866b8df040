"""OpenAI Moderation (``POST /v1/moderations``) as a detector for the ``openai-moderation`` pack.

Request ``{"model": "omni-moderation-latest", "input": <text>}`` with ``Authorization:
Bearer <key>``; the response ``{"id", "model", "results": [{"flagged", "categories",
"category_scores", "category_applied_input_types"}]}`` never echoes the input and is
returned as it came.
"""

from __future__ import annotations

import httpx
import orjson

from detector_orchestration.clients._vendor import (
    DEFAULT_TIMEOUT_S,
    SecretRef,
    VendorHttp,
    require_object,
)
from detector_orchestration.detectors.base import DetectorError, DetectorOutput

DEFAULT_BASE_URL = "https://api.openai.com"
DEFAULT_MODEL = "omni-moderation-latest"


class OpenAIModerationDetector:
    pack = "openai-moderation"
    content_types = frozenset({"text/plain", "text/markdown", "text/html", "application/json"})

    def __init__(
        self,
        api_key: SecretRef,
        *,
        name: str = "openai-moderation",
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        organization: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.version = f"openai-moderation@{model}"
        self.api_key = api_key
        self.url = base_url.rstrip("/") + "/v1/moderations"
        self.model = model
        self.organization = organization
        self.http = VendorHttp(name, client, timeout_s)

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        headers = {
            "Authorization": f"Bearer {self.api_key.resolve(self.name)}",
            "Content-Type": "application/json",
        }
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        body = orjson.dumps({"model": self.model, "input": content})
        answer = require_object(
            self.name, await self.http.post_json(self.url, content=body, headers=headers), "results"
        )
        if not isinstance(answer["results"], list) or not answer["results"]:
            raise DetectorError(f"{self.name}: unexpected response shape", retryable=False)
        return DetectorOutput(output=answer)

    async def aclose(self) -> None:
        await self.http.aclose()
