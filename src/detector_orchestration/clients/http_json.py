"""A generic JSON-over-HTTP detector: any service that takes the text in a JSON body and
answers JSON, described by configuration instead of code.

- ``request_template``: the JSON body, where the string ``"{{content}}"`` (a whole value)
  is replaced by the content and ``"{{content_type}}"`` by its type;
- ``response_path``: dot path (``result.labels``; list indexes as numbers) to the native
  output handed to the mapper pack; empty: the whole answer;
- ``spans_path`` (optional): dot path to a list of span objects whose ``start``/``end``/
  ``label``/``score`` keys are named by ``span_fields``;
- ``drop_keys``: keys removed from the native output wherever they occur (the matched
  text, say), so raw content never reaches the mapper, the cache or the logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from detector_orchestration.clients.http_base import AuthHeader, post_json
from detector_orchestration.detectors.base import DetectorError, DetectorOutput, Span

CONTENT = "{{content}}"
CONTENT_TYPE = "{{content_type}}"
DEFAULT_TEMPLATE: Mapping[str, Any] = {"text": CONTENT}
DEFAULT_SPAN_FIELDS: Mapping[str, str] = {
    "start": "start",
    "end": "end",
    "label": "label",
    "score": "score",
}


def fill(template: Any, content: str, content_type: str) -> Any:
    if template == CONTENT:
        return content
    if template == CONTENT_TYPE:
        return content_type
    if isinstance(template, Mapping):
        return {key: fill(value, content, content_type) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(item, content, content_type) for item in template]
    return template


def at_path(data: Any, path: str) -> Any:
    """The value at a dot path; DetectorError (wrong shape) when it is absent."""
    current = data
    for part in [p for p in path.split(".") if p]:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise DetectorError(
                f"detector answer has no {path!r} (unexpected response shape)", retryable=False
            )
    return current


def drop(data: Any, keys: frozenset[str]) -> Any:
    if not keys:
        return data
    if isinstance(data, Mapping):
        return {k: drop(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [drop(item, keys) for item in data]
    return data


def parse_spans(items: Any, fields: Mapping[str, str], content_length: int) -> tuple[Span, ...]:
    if not isinstance(items, list):
        raise DetectorError(
            "detector spans are not a list (unexpected response shape)", retryable=False
        )
    spans = []
    for item in items:
        if not isinstance(item, Mapping):
            raise DetectorError("a detector span is not an object", retryable=False)
        start, end = item.get(fields["start"]), item.get(fields["end"])
        label, score = item.get(fields["label"]), item.get(fields.get("score", "score"))
        if not isinstance(start, int) or not isinstance(end, int) or not isinstance(label, str):
            raise DetectorError(
                "a detector span lacks integer start/end or a label", retryable=False
            )
        if not 0 <= start <= end <= content_length:
            raise DetectorError("a detector span lies outside the content", retryable=False)
        spans.append(
            Span(start, end, label, float(score) if isinstance(score, int | float) else None)
        )
    return tuple(spans)


class HttpJsonDetector:
    def __init__(
        self,
        *,
        name: str,
        url: str,
        pack: str,
        http: httpx.AsyncClient,
        version: str = "remote",
        content_types: Sequence[str] = ("text/plain",),
        request_template: Any = None,
        response_path: str = "",
        spans_path: str | None = None,
        span_fields: Mapping[str, str] | None = None,
        drop_keys: Sequence[str] = (),
        auth: AuthHeader | None = None,
    ) -> None:
        self.name = name
        self.pack = pack
        self.version = version
        self.content_types = frozenset(content_types)
        self.url = url
        self.http = http
        self.request_template = DEFAULT_TEMPLATE if request_template is None else request_template
        self.response_path = response_path
        self.spans_path = spans_path
        self.span_fields = {**DEFAULT_SPAN_FIELDS, **(span_fields or {})}
        self.drop_keys = frozenset(drop_keys)
        self.auth = auth

    async def detect(self, content: str, content_type: str) -> DetectorOutput:
        body = fill(self.request_template, content, content_type)
        headers = self.auth.headers() if self.auth else None
        answer = await post_json(self.http, self.url, body, headers)
        output = drop(at_path(answer, self.response_path), self.drop_keys)
        spans: tuple[Span, ...] = ()
        if self.spans_path is not None:
            spans = parse_spans(at_path(answer, self.spans_path), self.span_fields, len(content))
        return DetectorOutput(output, spans)
