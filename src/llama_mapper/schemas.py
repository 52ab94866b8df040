"""The wire contract shared by the HTTP API, the CLI and (later) the Python SDK."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DetectorName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
TenantId = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
MetadataValue = str | int | float | bool | None
Metadata = Annotated[dict[str, MetadataValue], Field(max_length=32)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MapperPayload(_Strict):
    """One detector result to map, in the detector's own response shape."""

    detector: DetectorName = Field(description="Detector name, e.g. `openai-moderation`.")
    # `Any` rather than `JsonValue`: bodies arrive as parsed JSON already, and JsonValue's
    # per-node Python discriminator costs more than the whole mapping.
    output: Any = Field(
        description="The detector's output: a label, `a|b`, a list of labels, "
        "`[{label, score}]`, `{label: score}`, or the vendor's own response JSON."
    )
    tenant_id: TenantId
    metadata: Metadata | None = None


class DetectorRequest(_Strict):
    """Deprecated request shape (no tenant, output a string). Use MapperPayload."""

    detector: DetectorName
    output: str
    metadata: Metadata | None = None
    tenant_id: TenantId | None = None


class BatchRequest(_Strict):
    requests: list[dict[str, Any]] = Field(
        min_length=1,
        description="Up to `serving.max_batch_items` MapperPayload objects, validated one by "
        "one: a bad item yields an error entry and never fails the batch.",
    )


class Provenance(BaseModel):
    vendor: str | None
    detector: str
    detector_version: str | None
    route: str
    method: dict[str, str] = Field(
        description="How each label was found: exact, normalized, "
        "alias, model, threshold, empty or unmapped."
    )
    tenant_id: str
    request_id: str
    ts: str
    unmapped_labels: list[str] = Field(default_factory=list)
    model_candidates: dict[str, list[tuple[str, float]]] = Field(default_factory=dict)
    model_fallback: dict[str, str] = Field(
        default_factory=dict,
        description="Vendor label -> why the learned tier could not be asked for it "
        "(model_timeout, model_error); the label was mapped as if rules-only.",
    )


class VersionInfo(BaseModel):
    taxonomy: str
    frameworks: str
    detector_pack: str | None
    model: str
    score_rules: str


class MappingResponse(BaseModel):
    taxonomy: list[str] = Field(description="Canonical labels, highest score first.")
    scores: dict[str, float]
    confidence: float = Field(ge=0.0, le=1.0, description="How sure the mapping is.")
    frameworks: dict[str, list[str]] = Field(description="Controls each label evidences.")
    notes: list[str]
    provenance: Provenance
    version_info: VersionInfo


class ErrorBody(BaseModel):
    error_code: str
    message: str
    request_id: str
    retryable: bool


class BatchItemError(BaseModel):
    error: ErrorBody


class BatchResponse(BaseModel):
    results: list[MappingResponse | BatchItemError]
    succeeded: int
    failed: int


class HealthResponse(BaseModel):
    status: Literal["ok"]


class ReadyResponse(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
    version_info: dict[str, Any]
