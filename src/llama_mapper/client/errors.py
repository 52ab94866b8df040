"""Exceptions the SDK raises; every server failure arrives as the API's ``ErrorBody``."""

from __future__ import annotations


class MapperClientError(Exception):
    """Base of every error the SDK raises, so callers can catch one type."""


class MapperAPIError(MapperClientError):
    """The API answered with an error status.

    ``error_code``, ``message``, ``request_id`` and ``retryable`` come from the API's
    ``ErrorBody``; when a proxy answered instead (an HTML 502, say), ``error_code`` is
    ``HTTP_<status>`` and ``request_id`` whatever ``X-Request-ID`` said, or ``""``.
    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        request_id: str,
        retryable: bool,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message} (request_id={request_id or '-'})")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.request_id = request_id
        self.retryable = retryable
        self.retry_after = retry_after


class MapperConnectionError(MapperClientError):
    """No answer from the API (connection refused, timeout, dropped), after all retries."""
