"""The wire contract of ``POST /orchestrate`` (request validation and OpenAPI)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
    processing_mode: Literal["sync", "async"] = "sync"
    priority: Priority = Field("normal", description="critical bypasses the result cache.")
    required_detectors: list[Name] | None = Field(
        None, max_length=64, description="Detectors required on top of the policy's."
    )
    excluded_detectors: list[Name] | None = Field(
        None, max_length=64, description="Optional detectors to skip (required ones cannot be)."
    )
    metadata: Metadata | None = None


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


class BatchResponse(BaseModel):
    results: list[OrchestrateResponse | BatchItemError]
    succeeded: int
    failed: int
