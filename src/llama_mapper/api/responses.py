"""Fast JSON responses and the one error body every failure uses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from llama_mapper.errors import MapperError


class JSONBytes(Response):
    """orjson-encoded JSON: the response bodies are plain dicts built by the service."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(error: MapperError, request_id: str) -> dict[str, Any]:
    return {
        "error_code": error.error_code,
        "message": error.message,
        "request_id": request_id,
        "retryable": error.retryable,
    }


def error_response(
    error: MapperError, request_id: str, headers: dict[str, str] | None = None
) -> JSONBytes:
    merged = {**(error.headers or {}), **(headers or {})} or None
    return JSONBytes(error_body(error, request_id), status_code=error.status, headers=merged)
