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


class NotFound(MapperError):
    status = 404
    error_code = "NOT_FOUND"


class Conflict(MapperError):
    status = 409
    error_code = "CONFLICT"


class JobNotFound(MapperError):
    """No such job for this tenant: unknown, expired, or another tenant's (not told apart)."""

    status = 404
    error_code = "JOB_NOT_FOUND"


class JobAlreadyFinished(MapperError):
    status = 409
    error_code = "JOB_ALREADY_FINISHED"


class QueueFull(MapperError):
    status = 503
    error_code = "QUEUE_FULL"
    retryable = True


class CallbackNotAllowed(MapperError):
    status = 422
    error_code = "CALLBACK_NOT_ALLOWED"


class JobsDisabled(MapperError):
    status = 501
    error_code = "JOBS_DISABLED"
