"""The wire contract of ``POST /orchestrate`` (request validation and OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from detector_orchestration.jobs.webhook import MAX_URL_LENGTH, check_callback_url
from llama_mapper.schemas import ErrorBody, Metadata

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
ContentType = Annotated[str, StringConstraints(pattern=r"^[a-z]+/[a-z0-9.+-]{1,64}$")]
Priority = Literal["low", "normal", "high", "critical"]


class OrchestrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(description="The text to analyse. Never stored, logged or cached.")
    content_type: ContentType = "text/plain"
    tenant_id: Name
    policy_bundle: Name | None = Field(None, description="Default: policy.default_bundle.")
    processing_mode: Literal["sync", "async"] = Field(
        "sync", description="async: 202 with a job (GET /jobs/{job_id}) instead of the answer."
    )
    priority: Priority = Field(
        "normal", description="critical bypasses the result cache; async jobs run in this order."
    )
    callback_url: str | None = Field(
        None,
        max_length=MAX_URL_LENGTH,
        description="async only: http(s) URL POSTed the finished job, signed "
        "(X-Orch-Signature); its host must be allowed by jobs.webhook_allowed_hosts.",
    )
    required_detectors: list[Name] | None = Field(
        None, max_length=64, description="Detectors required on top of the policy's."
    )
    excluded_detectors: list[Name] | None = Field(
        None, max_length=64, description="Optional detectors to skip (required ones cannot be)."
    )
    metadata: Metadata | None = None

    @field_validator("callback_url")
    @classmethod
    def _callback(cls, value: str | None) -> str | None:
        if value is not None:
            problem = check_callback_url(value)
            if problem is not None:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _callback_needs_async(self) -> OrchestrateRequest:
        if self.callback_url is not None and self.processing_mode != "async":
            raise ValueError("callback_url needs processing_mode async")
        return self


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: list[dict[str, Any]] = Field(
        min_length=1,
        description="Up to `serving.max_batch_items` OrchestrateRequest objects, validated one "
        "by one: a bad item yields an error entry and never fails the batch.",
    )


class FindingSpan(BaseModel):
    start: int
    end: int


class FindingOut(BaseModel):
    label: str
    score: float
    detector: str
    detectors: list[str]
    span: FindingSpan | None


class DetectorResultOut(BaseModel):
    detector: str
    status: str
    latency_ms: float
    attempts: int
    error: str | None
    version: str | None
    cached: bool


class CoverageOut(BaseModel):
    method: str
    achieved: float
    required: float
    missing: list[str]


class PolicyRef(BaseModel):
    bundle: str
    version: str


class CoverageWarning(BaseModel):
    code: str
    message: str


class OrchestrateResponse(BaseModel):
    request_id: str
    decision: Literal["allow", "redact", "block"]
    reasons: list[str]
    findings: list[FindingOut]
    redacted_content: str | None = None
    detector_results: list[DetectorResultOut]
    coverage: CoverageOut
    mapping: dict[str, Any] = Field(description="The mapper's MappingResponse per detector.")
    policy: PolicyRef
    warnings: list[CoverageWarning] = Field(
        description="PARTIAL_COVERAGE (HTTP 206) names the gaps."
    )
    timings: dict[str, Any]


class BatchItemError(BaseModel):
    error: ErrorBody


class JobLinks(BaseModel):
    self_: str = Field(alias="self")


class JobAccepted(BaseModel):
    """``202`` for an async request; ``Location`` names the job."""

    job_id: str
    status: Literal["queued"]
    links: JobLinks


class DeliveryOut(BaseModel):
    attempt: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: float


class WebhookOut(BaseModel):
    state: Literal["none", "pending", "delivered", "failed"]
    deliveries: list[DeliveryOut]


class JobView(BaseModel):
    job_id: str
    tenant_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    priority: Priority
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int = Field(description="Runs started, crashed workers' included.")
    result_status: int | None = Field(
        description="The HTTP status the sync call would have answered (200, 206, 422...)."
    )
    result: OrchestrateResponse | None = Field(description="The sync answer (succeeded).")
    error: ErrorBody | None = Field(description="The sync error body (failed).")
    webhook: WebhookOut
    links: JobLinks


class BatchResponse(BaseModel):
    results: list[OrchestrateResponse | JobAccepted | BatchItemError]
    succeeded: int
    failed: int
    queued: int = Field(0, description="Items accepted as async jobs.")
