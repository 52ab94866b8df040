"""``GET /jobs/{job_id}`` and ``DELETE /jobs/{job_id}``: a tenant's async jobs.

The tenant is the API key's (with ``X-Tenant-Id``, if sent, checked against it), or with
auth off the ``X-Tenant-Id`` header, if any. Another tenant's job is reported as unknown.
Job views change until the job finishes and may quote redacted text: ``no-store``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from detector_orchestration.api.routes import CurrentPrincipal, orch_runtime
from detector_orchestration.errors import JobsDisabled
from detector_orchestration.jobs.service import JobService
from detector_orchestration.schemas import JobView
from llama_mapper.api.guard import RequestGuard
from llama_mapper.api.responses import JSONBytes, error_response
from llama_mapper.auth.keys import MAP_READ
from llama_mapper.auth.model import Principal
from llama_mapper.auth.service import authorize
from llama_mapper.errors import MapperError
from llama_mapper.schemas import ErrorBody

router = APIRouter(tags=["jobs"])
NO_STORE = {"Cache-Control": "no-store"}

JOB_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, unknown, expired or revoked API key."},
    403: {"model": ErrorBody, "description": "Scope missing or tenant not the key's tenant."},
    404: {"model": ErrorBody, "description": "JOB_NOT_FOUND: unknown, expired, or not this "
          "tenant's job."},
    501: {"model": ErrorBody, "description": "JOBS_DISABLED: jobs.enabled is false."},
    503: {"model": ErrorBody, "description": "BACKEND_UNAVAILABLE: the job store is down."},
}  # fmt: skip


def job_service(request: Request) -> JobService:
    jobs = orch_runtime(request).jobs
    if jobs is None:
        raise JobsDisabled("async jobs are disabled on this server (jobs.enabled)")
    return jobs


def _reader_tenant(request: Request, principal: Principal | None) -> str | None:
    header = request.headers.get("x-tenant-id") or None
    if principal is None:
        return header
    authorize(principal, MAP_READ, header)
    return principal.tenant_id


@router.get(
    "/jobs/{job_id}",
    response_model=JobView,
    responses=JOB_ERRORS,
    summary="An async job: its state and, once finished, the sync answer",
)
async def get_job(request: Request, job_id: str, principal: CurrentPrincipal) -> Response:
    jobs = job_service(request)
    job = await jobs.get(job_id, _reader_tenant(request, principal))
    return JSONBytes(await jobs.view(job), headers=NO_STORE)


@router.delete(
    "/jobs/{job_id}",
    response_model=JobView,
    responses={
        **JOB_ERRORS,
        409: {"model": ErrorBody, "description": "JOB_ALREADY_FINISHED."},
        429: {"model": ErrorBody, "description": "Rate limit exceeded; see Retry-After."},
    },
    summary="Cancel a queued or running job (a running one's result is then ignored)",
)
async def cancel_job(request: Request, job_id: str, principal: CurrentPrincipal) -> Response:
    jobs = job_service(request)
    guard: RequestGuard = request.app.state.guard

    async def handler(tenant: str | None) -> Response:
        job = await jobs.cancel(job_id, tenant)
        return JSONBytes(await jobs.view(job), headers=NO_STORE)

    return await guard.run(
        request,
        route="/jobs",
        principal=principal,
        claimed_tenants=[],
        cost=1,
        handler=handler,
    )


@router.api_route(
    "/jobs/{job_id}", methods=["POST", "PUT", "PATCH", "OPTIONS"], include_in_schema=False
)
async def other_method(request: Request) -> Response:
    """Two routes share the path; without this, Starlette's 405 would name only the
    first one's method in ``Allow``."""
    error = MethodNotAllowed("Method Not Allowed", headers={"Allow": "GET, DELETE"})
    return error_response(error, str(request.scope["state"]["request_id"]))


class MethodNotAllowed(MapperError):
    status = 405
    error_code = "METHOD_NOT_ALLOWED"
