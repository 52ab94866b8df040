"""Lakera Guard ``POST /v2/guard`` for the ``lakera-guard`` pack.

Request ``{"messages": [{"role": "user", "content": <text>}], "breakdown": true,
"payload": true, "project_id"?}`` with ``Authorization: Bearer <key>``; the answer is
``{"flagged", "breakdown": [{"project_id", "policy_id", "detector_id", "detector_type",
"detected", "message_id"}], "payload": [{"start", "end", "text", "detector_type", "labels",
"message_id"}], "metadata": {"request_uuid"}}``.

Payload matches become spans (offsets into the content, which is the only message) and lose
their ``text``, the matched PII, before the answer leaves the client.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from detector_orchestration.clients._vendor import (
    DEFAULT_TIMEOUT_S,
    SecretRef,
    VendorHttp,
    require_object,
)
from detector_orchestration.detectors.base import DetectorOutput, Span

DEFAULT_BASE_URL = "https://api.lakera.ai"


class LakeraGuardDetector:
    pack = "lakera-guard"
    version = "lakera-guard@v2"
    content_types = frozenset({"text/plain", "text/markdown", "text/html", "application/json"})

    def __init__(
        self,
        api_key: SecretRef,
        *,
        name: str = "lakera-guard",
        base_url: str = DEFAULT_BASE_URL,
        project_id: str | None = None,
        role: str = "user",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.url = base_url.rstrip("/") + "/v2/guard"
        self.api_key = api_key
        self.project_id = project_id
        self.role = role
        self.http = VendorHttp(name, client, timeout_s)

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        request: dict[str, Any] = {
            "messages": [{"role": self.role, "content": content}],
            "breakdown": True,
            "payload": True,
        }
        if self.project_id:
            request["project_id"] = self.project_id
        headers = {
            "Authorization": f"Bearer {self.api_key.resolve(self.name)}",
            "Content-Type": "application/json",
        }
        answer = require_object(
            self.name,
            await self.http.post_json(self.url, content=orjson.dumps(request), headers=headers),
            "flagged",
        )
        payload = [item for item in answer.get("payload") or [] if isinstance(item, dict)]
        spans = tuple(
            Span(item["start"], item["end"], str(item.get("detector_type", "")), 1.0)
            for item in payload
            if _offsets(item, len(content))
        )
        cleaned = dict(answer)
        if "payload" in answer:
            cleaned["payload"] = [{k: v for k, v in i.items() if k != "text"} for i in payload]
        return DetectorOutput(output=cleaned, spans=spans)

    async def aclose(self) -> None:
        await self.http.aclose()


def _offsets(item: dict[str, Any], length: int) -> bool:
    start, end = item.get("start"), item.get("end")
    return (
        isinstance(start, int)
        and isinstance(end, int)
        and not isinstance(start, bool)
        and 0 <= start < end <= length
    )
