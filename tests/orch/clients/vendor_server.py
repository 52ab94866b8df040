"""A real local HTTP server that answers like the four vendor APIs, in their documented shapes.

The vendors cannot be reached from tests, so this Starlette app plays them on a loopback
port (uvicorn in a thread). It checks each request the way the vendor would (auth header,
API version, SigV4 signature, body shape) and records it; ``mode`` makes an endpoint fail
(a status code, ``slow``, ``not-json`` or ``wrong-shape``) to exercise the error paths.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

OPENAI_KEY = "sk-test-openai-0123456789"
AZURE_KEY = "azure-test-key-abcdef"
LAKERA_KEY = "lakera-test-key-987"
AWS_ACCESS_KEY = "AKIDEXAMPLETESTKEY01"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_REGION = "us-east-1"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@dataclass
class VendorState:
    mode: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def last(self, vendor: str) -> dict[str, Any]:
        return next(r for r in reversed(self.requests) if r["vendor"] == vendor)


STATE = VendorState()


async def _failure(vendor: str) -> Response | None:
    mode = STATE.mode.get(vendor, "ok")
    if mode == "ok":
        return None
    if mode == "slow":
        await asyncio.sleep(2.0)
        return None
    if mode == "not-json":
        return PlainTextResponse("<html>gateway error</html>", status_code=200)
    if mode == "wrong-shape":
        return JSONResponse({"unexpected": True})
    return JSONResponse({"error": {"message": "simulated", "code": mode}}, status_code=int(mode))


async def _record(vendor: str, request: Request) -> dict[str, Any]:
    raw = await request.body()
    entry = {
        "vendor": vendor,
        "path": request.url.path,
        "query": dict(request.query_params),
        "headers": dict(request.headers),
        "raw": raw,
        "body": json.loads(raw),
    }
    STATE.requests.append(entry)
    return entry


async def openai_moderations(request: Request) -> Response:
    entry = await _record("openai", request)
    if entry["headers"].get("authorization") != f"Bearer {OPENAI_KEY}":
        return JSONResponse({"error": {"message": "Incorrect API key"}}, status_code=401)
    failed = await _failure("openai")
    if failed:
        return failed
    text = entry["body"]["input"]
    hateful = "hate" in text.lower()
    scores = {
        "harassment": 0.01,
        "harassment/threatening": 0.001,
        "hate": 0.93 if hateful else 0.002,
        "hate/threatening": 0.001,
        "illicit": 0.003,
        "illicit/violent": 0.0001,
        "self-harm": 0.0004,
        "self-harm/intent": 0.0002,
        "self-harm/instructions": 0.0001,
        "sexual": 0.0009,
        "sexual/minors": 0.00001,
        "violence": 0.004,
        "violence/graphic": 0.0003,
    }
    return JSONResponse(
        {
            "id": "modr-0d9740456c391e43c445bf0f010940c7",
            "model": entry["body"]["model"],
            "results": [
                {
                    "flagged": hateful,
                    "categories": {k: v > 0.5 for k, v in scores.items()},
                    "category_scores": scores,
                    "category_applied_input_types": {k: ["text"] for k in scores},
                }
            ],
        }
    )


async def azure_analyze(request: Request) -> Response:
    entry = await _record("azure", request)
    if entry["query"].get("api-version") != "2024-09-01":
        return JSONResponse({"error": {"code": "InvalidRequestBody"}}, status_code=400)
    if entry["headers"].get("ocp-apim-subscription-key") != AZURE_KEY:
        return JSONResponse({"error": {"code": "401", "message": "Access denied"}}, status_code=401)
    failed = await _failure("azure")
    if failed:
        return failed
    text = entry["body"]["text"]
    if len(text) > 10_000:
        return JSONResponse({"error": {"code": "InvalidRequestBody"}}, status_code=400)
    violent = "fight" in text.lower()
    matches = []
    if "blockedterm" in text:
        matches.append(
            {
                "blocklistName": "myList",
                "blocklistItemId": "item-1",
                "blocklistItemText": "blockedterm",
            }
        )
    return JSONResponse(
        {
            "blocklistsMatch": matches,
            "categoriesAnalysis": [
                {"category": "Hate", "severity": 0},
                {"category": "SelfHarm", "severity": 0},
                {"category": "Sexual", "severity": 0},
                {"category": "Violence", "severity": 4 if violent else 0},
            ],
        }
    )


def _sigv4_valid(entry: dict[str, Any], url: str) -> bool:
    """Recompute the SigV4 signature of the received request, as AWS does."""
    authorization = entry["headers"].get("authorization", "")
    found = re.match(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([\w-]+)/bedrock/aws4_request, "
        r"SignedHeaders=([\w;-]+), Signature=([0-9a-f]{64})$",
        authorization,
    )
    if not found or found.group(1) != AWS_ACCESS_KEY or found.group(3) != AWS_REGION:
        return False
    signed = found.group(4).split(";")
    headers = {name: entry["headers"][name] for name in signed if name != "host"}
    request = AWSRequest(method="POST", url=url, data=entry["raw"], headers=headers)
    request.context["timestamp"] = entry["headers"]["x-amz-date"]
    auth = SigV4Auth(Credentials(AWS_ACCESS_KEY, AWS_SECRET_KEY), "bedrock", AWS_REGION)
    canonical = auth.canonical_request(request)
    if auth.signed_headers(auth.headers_to_sign(request)) != found.group(4):
        return False
    return auth.signature(auth.string_to_sign(request, canonical), request) == found.group(5)


async def bedrock_apply(request: Request) -> Response:
    entry = await _record("bedrock", request)
    if not _sigv4_valid(entry, str(request.url)):
        return JSONResponse(
            {"message": "The request signature we calculated does not match"}, status_code=403
        )
    failed = await _failure("bedrock")
    if failed:
        return failed
    text = entry["body"]["content"][0]["text"]["text"]
    attack = "ignore previous" in text.lower()
    email = EMAIL.search(text)
    assessment: dict[str, Any] = {
        "contentPolicy": {
            "filters": [
                {
                    "type": "PROMPT_ATTACK",
                    "confidence": "HIGH" if attack else "NONE",
                    "filterStrength": "HIGH",
                    "action": "BLOCKED" if attack else "NONE",
                    "detected": attack,
                }
            ]
        },
        "invocationMetrics": {"guardrailProcessingLatency": 120},
    }
    if email:
        assessment["sensitiveInformationPolicy"] = {
            "piiEntities": [
                {"match": email.group(0), "type": "EMAIL", "action": "ANONYMIZED", "detected": True}
            ]
        }
    intervened = attack or email is not None
    return JSONResponse(
        {
            "usage": {"topicPolicyUnits": 1, "contentPolicyUnits": 1},
            "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
            "actionReason": "Guardrail blocked." if intervened else "No action.",
            "outputs": [{"text": EMAIL.sub("{EMAIL}", text)}] if intervened else [],
            "assessments": [assessment],
            "guardrailCoverage": {"textCharacters": {"guarded": len(text), "total": len(text)}},
        }
    )


async def lakera_guard(request: Request) -> Response:
    entry = await _record("lakera", request)
    if entry["headers"].get("authorization") != f"Bearer {LAKERA_KEY}":
        return JSONResponse({"error": "Unauthorized"}, status_code=401)
    failed = await _failure("lakera")
    if failed:
        return failed
    text = entry["body"]["messages"][-1]["content"]
    attack = "ignore previous" in text.lower()
    email = EMAIL.search(text)

    def item(detector_type: str, detected: bool) -> dict[str, Any]:
        return {
            "project_id": "project-0000000001",
            "policy_id": "policy-lakera-default",
            "detector_id": f"detector-lakera-default-{detector_type.replace('/', '-')}",
            "detector_type": detector_type,
            "detected": detected,
            "message_id": 0,
        }

    body: dict[str, Any] = {
        "flagged": attack or email is not None,
        "metadata": {"request_uuid": "ce8f9d1c-0b5a-4c1b-9a66-6d1c0e3b7f2a"},
    }
    if entry["body"].get("breakdown"):
        body["breakdown"] = [
            item("prompt_attack", attack),
            item("pii/email", email is not None),
            item("moderated_content/hate", False),
            item("unknown_links", False),
        ]
    if entry["body"].get("payload"):
        body["payload"] = (
            [
                {
                    "start": email.start(),
                    "end": email.end(),
                    "text": email.group(0),
                    "detector_type": "pii/email",
                    "labels": ["pii/email"],
                    "message_id": 0,
                }
            ]
            if email
            else []
        )
    return JSONResponse(body)


APP = Starlette(
    routes=[
        Route("/v1/moderations", openai_moderations, methods=["POST"]),
        Route("/contentsafety/text:analyze", azure_analyze, methods=["POST"]),
        Route("/guardrail/{gid}/version/{ver}/apply", bedrock_apply, methods=["POST"]),
        Route("/v2/guard", lakera_guard, methods=["POST"]),
    ]
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    def __init__(self) -> None:
        self.port = free_port()
        config = uvicorn.Config(APP, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("vendor server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
