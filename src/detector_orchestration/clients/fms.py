"""The FMS Guardrails Detector API (foundation-model-stack / TrustyAI detectors).

``POST <base>/api/v1/text/contents`` with header ``detector-id: <id>`` and body
``{"contents": [text], "detector_params": {...}}`` answers one list per content of
``[{start, end, text, detection, detection_type, score, evidence?, metadata?}]``.

The native output handed to the mapper's ``fms-detector`` pack is that nested list with
``text`` and ``evidence`` removed (they quote the content); the spans come from
``start``/``end`` with ``detection_type/detection`` as the vendor label, the same label
the pack maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from detector_orchestration.clients.http_base import AuthHeader, post_json
from detector_orchestration.detectors.base import DetectorError, DetectorOutput, Span

PATH = "/api/v1/text/contents"
_QUOTING_KEYS = frozenset({"text", "evidence"})


class FmsDetector:
    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        detector_id: str,
        http: httpx.AsyncClient,
        pack: str = "fms-detector",
        version: str = "remote",
        content_types: Sequence[str] = ("text/plain",),
        detector_params: Mapping[str, Any] | None = None,
        auth: AuthHeader | None = None,
    ) -> None:
        self.name = name
        self.pack = pack
        self.version = version
        self.content_types = frozenset(content_types)
        self.url = base_url.rstrip("/") + PATH
        self.detector_id = detector_id
        self.http = http
        self.detector_params = dict(detector_params or {})
        self.auth = auth

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        headers = {"detector-id": self.detector_id, **(self.auth.headers() if self.auth else {})}
        body = {"contents": [content], "detector_params": self.detector_params}
        answer = await post_json(self.http, self.url, body, headers)
        return parse_contents_response(answer, len(content))


def parse_contents_response(answer: Any, content_length: int) -> DetectorOutput:
    if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], list):
        raise DetectorError(
            "fms detector answer is not one list of detections per content", retryable=False
        )
    detections: list[dict[str, Any]] = []
    spans: list[Span] = []
    for item in answer[0]:
        if not isinstance(item, Mapping):
            raise DetectorError("an fms detection is not an object", retryable=False)
        kind, name = item.get("detection_type"), item.get("detection")
        start, end, score = item.get("start"), item.get("end"), item.get("score")
        if not isinstance(kind, str) or not isinstance(name, str):
            raise DetectorError("an fms detection lacks detection/detection_type", retryable=False)
        if not isinstance(score, int | float):
            raise DetectorError("an fms detection lacks a numeric score", retryable=False)
        detections.append({k: v for k, v in item.items() if k not in _QUOTING_KEYS})
        if isinstance(start, int) and isinstance(end, int):
            if not 0 <= start <= end <= content_length:
                raise DetectorError("an fms detection lies outside the content", retryable=False)
            spans.append(Span(start, end, f"{kind}/{name}", float(score)))
    return DetectorOutput([detections], tuple(spans))
