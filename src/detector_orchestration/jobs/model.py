"""A job's state: what is stored (no content), how it moves, and how a client sees it.

The stored document never holds the request's ``content``: that travels sealed in the
payload (see :mod:`.sealing`), deleted when the job finishes. The result is the sync
answer except ``redacted_content`` (derived from the content: the unredacted words
survive), which is kept sealed next to it and opened only for the tenant's own reads.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
#: Queue order: the request's ``priority``, most urgent first.
PRIORITIES = ("critical", "high", "normal", "low")


class WebhookState(enum.StrEnum):
    NONE = "none"
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def new_job_id() -> str:
    """128 random bits: unguessable, so an id alone reveals nothing about other jobs."""
    return "job_" + secrets.token_hex(16)


def valid_job_id(value: str) -> bool:
    return len(value) == 36 and value.startswith("job_") and _is_hex(value[4:])


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Delivery:
    """One webhook attempt: when, and the receiver's status or the error's type."""

    attempt: int
    at: str
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass
class Job:
    job_id: str
    tenant_id: str
    priority: str
    status: JobStatus = JobStatus.QUEUED
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    result_status: int | None = None
    result: dict[str, Any] | None = None
    #: ``redacted_content`` of the result, sealed (see the module docstring).
    sealed_redacted: str | None = None
    error: dict[str, Any] | None = None
    callback_url: str | None = None
    webhook: WebhookState = WebhookState.NONE
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    def touch(self) -> None:
        self.updated_at = now_iso()

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, data: bytes | str) -> Job:
        raw = orjson.loads(data)
        raw["status"] = JobStatus(raw["status"])
        raw["webhook"] = WebhookState(raw["webhook"])
        raw["deliveries"] = [Delivery(**d) for d in raw["deliveries"]]
        return cls(**raw)

    def links(self) -> dict[str, str]:
        return {"self": f"/jobs/{self.job_id}"}

    def accepted(self) -> dict[str, Any]:
        """The ``202`` body of a submission (and a batch's entry for an async item)."""
        return {"job_id": self.job_id, "status": self.status.value, "links": self.links()}

    def view(self, redacted_content: str | None = None) -> dict[str, Any]:
        """What ``GET /jobs/{id}`` and the webhook show (``redacted_content`` opened)."""
        result = self.result
        if result is not None and "redacted_content" in result:
            result = {**result, "redacted_content": redacted_content}
        return {
            "job_id": self.job_id,
            "tenant_id": self.tenant_id,
            "status": self.status.value,
            "priority": self.priority,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempts": self.attempts,
            "result_status": self.result_status,
            "result": result,
            "error": self.error,
            "webhook": {
                "state": self.webhook.value,
                "deliveries": [asdict(d) for d in self.deliveries],
            },
            "links": self.links(),
        }
