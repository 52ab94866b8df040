"""Client-facing errors: one code, one HTTP status, one safe message each.

Messages are written for the caller and never include request content, so they can be
returned, logged and counted without leaking anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class MapperError(Exception):
    status = 400
    error_code = "BAD_REQUEST"
    retryable = False

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: Extra response headers (Retry-After, RateLimit-*, WWW-Authenticate …).
        self.headers = headers


class InvalidJSON(MapperError):
    error_code = "INVALID_JSON"


class RawContentRejected(MapperError):
    error_code = "RAW_CONTENT_REJECTED"


class InvalidRequest(MapperError):
    status = 422
    error_code = "INVALID_REQUEST"


class RetiredRequestShape(MapperError):
    status = 422
    error_code = "DEPRECATED_REQUEST_SHAPE"


class InvalidOutput(MapperError):
    status = 422
    error_code = "INVALID_DETECTOR_OUTPUT"


class BatchTooLarge(MapperError):
    status = 422
    error_code = "BATCH_TOO_LARGE"


class PayloadTooLarge(MapperError):
    status = 413
    error_code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(MapperError):
    status = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"


class ConfigurationError(MapperError):
    """A tenant overlay or threshold file is broken: the operator's fault, not the client's."""

    status = 503
    error_code = "CONFIGURATION_ERROR"
    retryable = True


class TenantMismatch(MapperError):
    """The request names a tenant other than the one its API key belongs to."""

    status = 403
    error_code = "TENANT_MISMATCH"


class RateLimited(MapperError):
    status = 429
    error_code = "RATE_LIMITED"
    retryable = True


class IdempotencyConflict(MapperError):
    """The same Idempotency-Key is still being processed."""

    status = 409
    error_code = "IDEMPOTENCY_IN_PROGRESS"
    retryable = True


class IdempotencyKeyReused(MapperError):
    status = 422
    error_code = "IDEMPOTENCY_KEY_REUSED"


class BackendUnavailable(MapperError):
    status = 503
    error_code = "BACKEND_UNAVAILABLE"
    retryable = True


class EvidenceBacklogged(MapperError):
    """The evidence queue is full and the operator chose to shed rather than wait."""

    status = 503
    error_code = "EVIDENCE_BACKLOGGED"
    retryable = True


def describe_validation_errors(
    errors: Iterable[Mapping[str, Any]], limit: int = 5, *, hide_extra_keys: bool = False
) -> str:
    """Where and what is wrong, for a client: never the offending value, and never a key
    the client invented (an unexpected field name may itself be content).

    ``hide_extra_keys`` also masks identifier-shaped invented keys (``extra_forbidden``
    errors), for APIs whose bodies carry content (orch's): a one-word key may be a token.
    """
    parts = []
    for error in list(errors)[:limit]:
        where = [_loc_part(p) for p in error.get("loc", ()) if p != "body"]
        if hide_extra_keys and error.get("type") == "extra_forbidden" and where:
            where[-1] = "<field>"
        parts.append(f"{'.'.join(where) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _loc_part(part: object) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    text = str(part)
    return text if _FIELD_NAME.match(text) else "<field>"
