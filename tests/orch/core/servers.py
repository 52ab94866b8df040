"""Real HTTP servers on loopback for the orch tests: detectors that misbehave on purpose,
and a small OPA speaking its REST Data API (backed by the real regorus engine).

Each detector lives under ``/<name>/`` and behaves as ``server.behaviour[name]`` says:
``ok`` (finds emails and a jailbreak phrase by regex, like a real detector would), ``slow``
(``delay`` seconds first), ``fail`` (HTTP 500), ``flap`` (fails every other call),
``wrong`` (valid JSON of the wrong shape), ``garbage`` (not JSON), ``unauthorized`` (401
unless the expected bearer token is sent). The server counts calls per detector.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import regorus
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
JAILBREAK = re.compile(r"ignore all previous instructions", re.IGNORECASE)


@dataclass
class Behaviour:
    mode: str = "ok"
    delay: float = 0.0
    token: str | None = None


@dataclass
class DetectorServer:
    url: str = ""
    behaviour: dict[str, Behaviour] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def set(self, name: str, mode: str = "ok", delay: float = 0.0, token: str | None = None) -> str:
        self.behaviour[name] = Behaviour(mode, delay, token)
        return f"{self.url}/{name}"


def _detections(text: str) -> list[dict[str, Any]]:
    found = [
        {"start": m.start(), "end": m.end(), "text": m.group(0), "detection": "email_address",
         "detection_type": "pii", "score": 0.97}
        for m in EMAIL.finditer(text)
    ]  # fmt: skip
    found += [
        {"start": m.start(), "end": m.end(), "text": m.group(0), "detection": "jailbreak",
         "detection_type": "risk", "score": 0.93, "evidence": [{"name": m.group(0)}]}
        for m in JAILBREAK.finditer(text)
    ]  # fmt: skip
    return found


def detector_app(server: DetectorServer) -> Starlette:
    async def misbehave(request: Request, name: str) -> Response | None:
        behaviour = server.behaviour.get(name, Behaviour())
        server.calls[name] += 1
        server.headers.append(dict(request.headers))
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        mode = behaviour.mode
        if mode == "fail":
            return JSONResponse({"error": "boom"}, status_code=500)
        if mode == "flap" and server.calls[name] % 2 == 1:
            return JSONResponse({"error": "flap"}, status_code=503)
        if mode == "wrong":
            return JSONResponse({"unexpected": "shape"})
        if mode == "garbage":
            return Response(b"<html>not json</html>", media_type="text/html")
        if (
            mode == "unauthorized"
            and request.headers.get("authorization") != f"Bearer {behaviour.token}"
        ):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return None

    async def fms(request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.json()
        server.bodies.append(body)
        problem = await misbehave(request, name)
        if problem is not None:
            return problem
        return JSONResponse([_detections(text) for text in body["contents"]])

    async def generic(request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.json()
        server.bodies.append(body)
        problem = await misbehave(request, name)
        if problem is not None:
            return problem
        text = body["input"]["text"]
        spans = [
            {"begin": m.start(), "finish": m.end(), "kind": "email", "confidence": 0.9}
            for m in EMAIL.finditer(text)
        ]
        labels = [{"label": "email", "score": 0.9}] if spans else []
        return JSONResponse({"result": {"labels": labels}, "matches": spans, "echo": text})

    return Starlette(
        routes=[
            Route("/{name}/api/v1/text/contents", fms, methods=["POST"]),
            Route("/{name}/json", generic, methods=["POST"]),
        ]
    )


def opa_app(modules: dict[str, str]) -> Starlette:
    """``POST /v1/data/<path>`` ``{"input": ...}`` -> ``{"result": ...}``, as OPA answers;
    an undefined rule answers ``{}`` (no ``result``), like OPA."""
    local_state = threading.local()  # regorus engines must live and die on their thread

    async def data(request: Request) -> Response:
        body = await request.json()
        rule = "data." + request.path_params["path"].replace("/", ".")
        engine = getattr(local_state, "engine", None)
        if engine is None:
            engine = local_state.engine = regorus.Engine()
            for path, source in modules.items():
                engine.add_policy(path, source)
        local = engine.clone()
        local.set_input(body.get("input", {}))
        try:
            answers = local.eval_query(rule).get("result", [])
        except RuntimeError:
            return JSONResponse({"code": "internal_error", "message": "eval failed"}, 500)
        value = answers[0]["expressions"][0]["value"] if answers else None
        return JSONResponse({} if value is None else {"result": _as_json(value)})

    return Starlette(routes=[Route("/v1/data/{path:path}", data, methods=["POST"])])


def _as_json(value: Any) -> Any:
    """Rego sets travel as JSON arrays, as OPA sends them."""
    if isinstance(value, set | frozenset):
        return sorted(_as_json(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """A real uvicorn server in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "server exited"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class WebhookReceiver:
    """A webhook endpoint that checks ``X-Orch-Signature`` with ``secret`` and answers
    ``fail_status`` to the first ``fail_first`` deliveries (to prove retries)."""

    secret: str
    fail_first: int = 0
    fail_status: int = 503
    #: Seconds the first delivery waits before it is answered (a worker may die meanwhile).
    hang_first: float = 0.0
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verified(self) -> list[dict[str, Any]]:
        return [r for r in self.received if r["valid"]]


def webhook_app(receiver: WebhookReceiver) -> Starlette:
    from detector_orchestration.jobs import SIGNATURE_HEADER, verify_signature

    async def hook(request: Request) -> Response:
        body = await request.body()
        header = request.headers.get(SIGNATURE_HEADER, "")
        valid = verify_signature(receiver.secret, header, body)
        receiver.received.append({"body": body, "headers": dict(request.headers), "valid": valid})
        if not valid:
            return JSONResponse({"error": "bad signature"}, status_code=400)
        if receiver.hang_first and len(receiver.received) == 1:
            await asyncio.sleep(receiver.hang_first)
        if len(receiver.received) <= receiver.fail_first:
            return JSONResponse({"error": "not now"}, status_code=receiver.fail_status)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
