"""Authentication and authorization failures, rendered by the API as the standard ErrorBody.

Every way a presented key can be wrong (malformed, unknown, wrong secret, revoked,
expired) raises the same :class:`AuthenticationError` with the same message, so a caller
probing with guessed or stolen keys cannot tell which check failed.
"""

from __future__ import annotations

from llama_mapper import errors
from llama_mapper.errors import MapperError

#: The one message for every rejected key.
INVALID_KEY_MESSAGE = "invalid API key"


class AuthenticationError(MapperError):
    """No usable API key (HTTP 401)."""

    status = 401
    error_code = "INVALID_API_KEY"

    def __init__(
        self, message: str = INVALID_KEY_MESSAGE, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, headers)


class PermissionDenied(MapperError):
    """A valid key that may not do this (HTTP 403); see the two subclasses."""

    status = 403
    error_code = "INSUFFICIENT_SCOPE"


class InsufficientScope(PermissionDenied):
    """The key lacks the scope the operation needs."""

    error_code = "INSUFFICIENT_SCOPE"


class TenantMismatch(PermissionDenied, errors.TenantMismatch):
    """The request names a tenant other than the key's.

    Also a :class:`llama_mapper.errors.TenantMismatch`, so handlers written against either
    class catch it.
    """

    error_code = "TENANT_MISMATCH"


class KeyNotFound(MapperError):
    """An administrative operation named a key id that does not exist (HTTP 404)."""

    status = 404
    error_code = "API_KEY_NOT_FOUND"
