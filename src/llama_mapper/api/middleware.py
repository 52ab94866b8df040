"""Edge checks that must run before FastAPI parses a body: request id, media type, size.

Written as plain ASGI rather than ``BaseHTTPMiddleware`` because it sits on the hot path
and must be able to stop reading a body the moment it exceeds the limit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from llama_mapper.api.responses import error_response
from llama_mapper.errors import MapperError, PayloadTooLarge, UnsupportedMediaType

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
_CLIENT_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
BODY_TOO_LARGE = "body_too_large"


class _BodyTooLarge(Exception):
    pass


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, json_routes: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        #: Routes that take a JSON body; others fall through to the router (404/405).
        self.json_routes = json_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        client_id = headers.get(REQUEST_ID_HEADER, b"")
        request_id = client_id.decode() if _CLIENT_REQUEST_ID.match(client_id) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        if scope["method"] in _BODY_METHODS and scope["path"] in self.json_routes:
            problem = self._check_headers(headers)
            if problem is not None:
                await error_response(problem, request_id)(scope, receive, send_with_id)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI turns errors raised while reading a body into a 400; the flag
                    # lets the app's error handler answer 413 instead.
                    scope["state"][BODY_TOO_LARGE] = True
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            await error_response(self._too_large(), request_id)(scope, receive, send_with_id)

    def _check_headers(self, headers: dict[bytes, bytes]) -> MapperError | None:
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            return UnsupportedMediaType("send the body as application/json")
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return PayloadTooLarge("invalid Content-Length")
            if int(length) > self.max_body_bytes:
                return self._too_large()
        return None

    def _too_large(self) -> PayloadTooLarge:
        return too_large(self.max_body_bytes)


def too_large(max_body_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds {max_body_bytes // 1024} KiB")
