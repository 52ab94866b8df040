"""A registered detector as stored: where it is, how to call it, never its secret."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SECRET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # noqa: S105 - a name pattern
Health = Literal["unknown", "healthy", "unhealthy"]


class DetectorSpec(BaseModel):
    """What an operator registers (API body, CLI options)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=NAME)]
    kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")] = Field(
        description="fms, http-json, or a vendor client kind (openai-moderation...)."
    )
    endpoint: Annotated[str, StringConstraints(pattern=r"^https?://\S{1,500}$")] | None = None
    timeout_ms: int = Field(1000, ge=1, le=120_000)
    retries: int = Field(1, ge=0, le=5)
    content_types: list[Annotated[str, StringConstraints(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]] = (
        Field(default_factory=lambda: ["text/plain"], min_length=1)
    )
    auth_secret: Annotated[str, StringConstraints(pattern=SECRET_NAME)] | None = Field(
        None, description="Name of the secret (SecretProvider) holding the credential."
    )
    pack: Annotated[str, StringConstraints(pattern=NAME)] = Field(
        description="The mapper detector pack that reads this detector's native output."
    )
    version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._+-]{1,64}$")] = "remote"
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Kind-specific: detector_id, detector_params (fms); request_template, "
        "response_path, spans_path, span_fields, drop_keys (http-json); auth_header/scheme.",
    )


class DetectorRecord(DetectorSpec):
    health: Health = "unknown"
    health_checked_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def summary(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["source"] = "registry"
        return data
