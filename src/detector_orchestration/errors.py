"""orch's client-facing errors, in the mapper's ErrorBody (same base class, same handler)."""

from __future__ import annotations

from llama_mapper.errors import MapperError


class AllDetectorsUnavailable(MapperError):
    status = 502
    error_code = "ALL_DETECTORS_UNAVAILABLE"
    retryable = True


class PolicyNotFound(MapperError):
    status = 422
    error_code = "POLICY_NOT_FOUND"


class PolicyUnavailable(MapperError):
    """The bundle's engine could not decide (Rego error, OPA down): retry later."""

    status = 503
    error_code = "POLICY_UNAVAILABLE"
    retryable = True


class UnsupportedContentType(MapperError):
    status = 422
    error_code = "UNSUPPORTED_CONTENT_TYPE"


class RequiredDetectorExcluded(MapperError):
    status = 422
    error_code = "REQUIRED_DETECTOR_EXCLUDED"


class NotImplementedMode(MapperError):
    status = 501
    error_code = "NOT_IMPLEMENTED"


class NotFound(MapperError):
    status = 404
    error_code = "NOT_FOUND"


class Conflict(MapperError):
    status = 409
    error_code = "CONFLICT"
