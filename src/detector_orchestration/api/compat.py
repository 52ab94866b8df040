"""Compatibility endpoints, so existing clients can adopt orch unchanged.

- fms guardrails orchestrator, standalone detection: ``POST /api/v2/text/detection/content``
  ``{"detectors": {"<id>": {params}}, "content": "..."}`` -> ``{"detections": [{start, end,
  text, detection, detection_type, detector_id, score}]}``. The named detectors are
  required on top of the tenant's default bundle; ``detection`` is the canonical label,
  ``detection_type`` its family in lower case (``pii``), ``text`` the client's own span (a
  finding without a span covers the whole content, as classifiers report it there).
- LiteLLM Generic Guardrail API: ``POST /beta/litellm_basic_guardrail_api`` with
  ``{texts, input_type, request_data, additional_provider_specific_params, ...}`` ->
  ``{action: BLOCKED | NONE | GUARDRAIL_INTERVENED, blocked_reason, texts}``; each text is
  orchestrated; any block blocks, any redaction intervenes with the redacted texts.

The tenant is the API key's, else ``X-Tenant-Id``, else
``additional_provider_specific_params.tenant_id`` (LiteLLM), else the default tenant;
the bundle is ``additional_provider_specific_params.policy_bundle`` (LiteLLM) or
``X-Orch-Policy``, else the default. Errors answer the same ErrorBody as /orchestrate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from detector_orchestration.api.routes import ERRORS, CurrentPrincipal, log_access, orch_runtime
from detector_orchestration.schemas import Name, OrchestrateRequest
from detector_orchestration.service import Outcome
from llama_mapper.api.guard import RequestGuard
from llama_mapper.api.responses import JSONBytes

router = APIRouter(tags=["compatibility"])
FMS_ROUTE = "/api/v2/text/detection/content"
LITELLM_ROUTE = "/beta/litellm_basic_guardrail_api"


class FmsDetectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detectors: dict[Name, dict[str, Any]] = Field(default_factory=dict, max_length=64)
    content: str


class LiteLLMGuardrailRequest(BaseModel):
    # LiteLLM adds fields over time; unknown ones are ignored (and never echoed).
    model_config = ConfigDict(extra="ignore")

    input_type: Literal["request", "response"] = "request"
    texts: list[str] | None = Field(None, max_length=256)
    litellm_call_id: str | None = None
    litellm_trace_id: str | None = None
    request_data: dict[str, Any] | None = None
    additional_provider_specific_params: dict[str, Any] | None = None


def _tenant(request: Request, tenant: str | None, params: dict[str, Any] | None) -> str:
    runtime = orch_runtime(request)
    named = request.headers.get("x-tenant-id") or (params or {}).get("tenant_id")
    return (
        tenant
        or (named if isinstance(named, str) else None)
        or (runtime.shared.settings.default_tenant)
    )


def _bundle(request: Request, params: dict[str, Any] | None) -> str | None:
    named = (params or {}).get("policy_bundle") or request.headers.get("x-orch-policy")
    return named if isinstance(named, str) else None


def _claimed(request: Request, params: dict[str, Any] | None) -> list[str | None]:
    named = (params or {}).get("tenant_id")
    return [named if isinstance(named, str) else None]


@router.post(FMS_ROUTE, responses=ERRORS, summary="fms orchestrator: detections on content")
async def fms_detection_content(
    request: Request, body: Annotated[FmsDetectionRequest, Body()], principal: CurrentPrincipal
) -> Response:
    runtime = orch_runtime(request)
    guard: RequestGuard = request.app.state.guard
    request_id = str(request.scope["state"]["request_id"])

    async def handler(tenant: str | None) -> Response:
        started = time.perf_counter()
        orchestration = OrchestrateRequest(
            content=body.content,
            tenant_id=_tenant(request, tenant, None),
            policy_bundle=_bundle(request, None),
            required_detectors=list(body.detectors) or None,
        )
        outcome = await runtime.orchestrator.orchestrate(orchestration, request_id=request_id)
        log_access(request_id, 200, started, route=FMS_ROUTE, decision=outcome.decision.value)
        detections = [_detection(f, body.content) for f in outcome.body["findings"]]
        return JSONBytes({"detections": detections}, headers={"Cache-Control": "no-store"})

    return await guard.run(
        request,
        route=FMS_ROUTE,
        principal=principal,
        claimed_tenants=[],
        cost=1,
        handler=handler,
    )


def _detection(finding: dict[str, Any], content: str) -> dict[str, Any]:
    span = finding["span"] or {"start": 0, "end": len(content)}
    return {
        "start": span["start"],
        "end": span["end"],
        "text": content[span["start"] : span["end"]],
        "detection": finding["label"],
        "detection_type": finding["label"].split(".")[0].lower(),
        "detector_id": finding["detector"],
        "score": finding["score"],
    }


@router.post(LITELLM_ROUTE, responses=ERRORS, summary="LiteLLM Generic Guardrail API")
async def litellm_guardrail(
    request: Request,
    body: Annotated[LiteLLMGuardrailRequest, Body()],
    principal: CurrentPrincipal,
) -> Response:
    runtime = orch_runtime(request)
    guard: RequestGuard = request.app.state.guard
    request_id = str(request.scope["state"]["request_id"])
    params = body.additional_provider_specific_params
    texts = body.texts or []

    async def handler(tenant: str | None) -> Response:
        started = time.perf_counter()
        tenant_id = _tenant(request, tenant, params)
        outcomes: list[Outcome] = list(
            await asyncio.gather(
                *(
                    runtime.orchestrator.orchestrate(
                        OrchestrateRequest(
                            content=text,
                            tenant_id=tenant_id,
                            policy_bundle=_bundle(request, params),
                        ),
                        request_id=f"{request_id}.{index}",
                    )
                    for index, text in enumerate(texts)
                )
            )
        )
        decisions = [o.body["decision"] for o in outcomes]
        answer: dict[str, Any]
        if "block" in decisions:
            blocking = [o for o in outcomes if o.body["decision"] == "block"]
            reasons = sorted({r for o in blocking for r in o.body["reasons"]})
            answer = {"action": "BLOCKED", "blocked_reason": ", ".join(reasons) or "blocked"}
        elif "redact" in decisions:
            answer = {
                "action": "GUARDRAIL_INTERVENED",
                "blocked_reason": None,
                "texts": [
                    o.body["redacted_content"] if o.body["decision"] == "redact" else text
                    for o, text in zip(outcomes, texts, strict=True)
                ],
            }
        else:
            answer = {"action": "NONE", "blocked_reason": None}
        log_access(request_id, 200, started, route=LITELLM_ROUTE, action=answer["action"])
        return JSONBytes(answer, headers={"Cache-Control": "no-store"})

    return await guard.run(
        request,
        route=LITELLM_ROUTE,
        principal=principal,
        claimed_tenants=_claimed(request, params),
        cost=max(1, len(texts)),
        handler=handler,
    )
