"""Azure AI Content Safety ``text:analyze`` (API 2024-09-01) for the ``azure-content-safety`` pack.

``POST {endpoint}/contentsafety/text:analyze?api-version=2024-09-01`` with the
``Ocp-Apim-Subscription-Key`` header and ``{"text", "categories", "blocklistNames",
"haltOnBlocklistHit", "outputType"}``; the answer is ``{"blocklistsMatch": [{"blocklistName",
"blocklistItemId", "blocklistItemText"}], "categoriesAnalysis": [{"category", "severity"}]}``.

The service reads at most 10,000 characters per call, so longer content is sent in pieces
and the answers are merged: the highest severity per category, every blocklist hit.
``blocklistItemText`` (the matched term, which can be the user's words) is dropped before
the answer leaves the client.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from detector_orchestration.clients._vendor import (
    DEFAULT_TIMEOUT_S,
    SecretRef,
    VendorHttp,
    require_object,
)
from detector_orchestration.detectors.base import DetectorError, DetectorOutput

API_VERSION = "2024-09-01"
MAX_TEXT_CHARS = 10_000
CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")


class AzureContentSafetyDetector:
    pack = "azure-content-safety"
    content_types = frozenset({"text/plain", "text/markdown", "text/html", "application/json"})

    def __init__(
        self,
        endpoint: str,
        api_key: SecretRef,
        *,
        name: str = "azure-content-safety",
        blocklist_names: tuple[str, ...] = (),
        halt_on_blocklist_hit: bool = False,
        output_type: str = "FourSeverityLevels",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.version = f"azure-content-safety@{API_VERSION}"
        self.url = endpoint.rstrip("/") + "/contentsafety/text:analyze"
        self.api_key = api_key
        self.blocklist_names = list(blocklist_names)
        self.halt_on_blocklist_hit = halt_on_blocklist_hit
        self.output_type = output_type
        self.http = VendorHttp(name, client, timeout_s)

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        key = self.api_key.resolve(self.name)
        pieces = [
            content[i : i + MAX_TEXT_CHARS] for i in range(0, max(len(content), 1), MAX_TEXT_CHARS)
        ]
        answers = await asyncio.gather(*(self._analyze(piece, key) for piece in pieces))
        return DetectorOutput(output=merge(answers))

    async def _analyze(self, text: str, key: str) -> dict[str, Any]:
        body = orjson.dumps(
            {
                "text": text,
                "categories": list(CATEGORIES),
                "blocklistNames": self.blocklist_names,
                "haltOnBlocklistHit": self.halt_on_blocklist_hit,
                "outputType": self.output_type,
            }
        )
        headers = {"Ocp-Apim-Subscription-Key": key, "Content-Type": "application/json"}
        answer = await self.http.post_json(
            self.url, content=body, headers=headers, params={"api-version": API_VERSION}
        )
        return require_object(self.name, answer, "categoriesAnalysis")

    async def aclose(self) -> None:
        await self.http.aclose()


def merge(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``text:analyze`` answer for all pieces, without any matched text."""
    severity: dict[str, int] = {}
    matches: list[dict[str, Any]] = []
    for answer in answers:
        analyses = answer.get("categoriesAnalysis")
        if not isinstance(analyses, list):
            raise DetectorError("azure-content-safety: unexpected response shape", retryable=False)
        for item in analyses:
            if not isinstance(item, dict) or not isinstance(item.get("category"), str):
                raise DetectorError(
                    "azure-content-safety: unexpected response shape", retryable=False
                )
            category, value = item["category"], item.get("severity")
            if isinstance(value, int) and value >= severity.get(category, -1):
                severity[category] = value
        for match in answer.get("blocklistsMatch") or []:
            if isinstance(match, dict):
                matches.append({k: v for k, v in match.items() if k != "blocklistItemText"})
    return {
        "blocklistsMatch": matches,
        "categoriesAnalysis": [{"category": c, "severity": s} for c, s in severity.items()],
    }
