"""What the vendor clients share: one POST with httpx, errors mapped to ``DetectorError``.

The executor owns deadlines and retries, so a client makes exactly one attempt. Whether
another attempt may help is the vendor's status code: 429 and 5xx (and timeouts or broken
connections) are retryable, other 4xx are the caller's or the configuration's mistake and
are not. Error messages name the vendor and the status only: never the content, the
response body (vendors echo input in error details) or a credential.
"""

from __future__ import annotations

from typing import Any

import httpx

from detector_orchestration.detectors.base import DetectorError
from llama_mapper.secrets import SecretError, SecretProvider

DEFAULT_TIMEOUT_S = 10.0


class SecretRef:
    """A credential named by reference: resolved from the secrets backend on each call, so
    rotation needs no restart and the value is never part of any configuration."""

    def __init__(self, provider: SecretProvider, name: str) -> None:
        self.provider = provider
        self.name = name

    def __repr__(self) -> str:
        return f"SecretRef({self.name!r})"

    def resolve(self, vendor: str) -> str:
        try:
            return self.provider.get(self.name).value
        except SecretError as exc:
            # SecretError messages name the secret and the backend, never a value.
            raise DetectorError(
                f"{vendor}: credential unavailable ({exc})", retryable=False
            ) from None


def retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


class VendorHttp:
    """One ``httpx.AsyncClient`` per detector (connection reuse), created lazily."""

    def __init__(self, vendor: str, client: httpx.AsyncClient | None, timeout_s: float) -> None:
        self.vendor = vendor
        self._client = client
        self._owned = client is None
        self._timeout = timeout_s

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._owned:
            await self._client.aclose()
            self._client = None

    async def post_json(
        self,
        url: str,
        *,
        content: bytes,
        headers: dict[str, str],
        params: dict[str, str] | None = None,
    ) -> Any:
        """POST ``content`` (already-encoded JSON) and return the decoded JSON answer."""
        try:
            response = await self.client().post(
                url, content=content, headers=headers, params=params
            )
        except httpx.TimeoutException:
            raise DetectorError(f"{self.vendor}: timed out", retryable=True) from None
        except httpx.HTTPError as exc:
            raise DetectorError(
                f"{self.vendor}: request failed ({type(exc).__name__})", retryable=True
            ) from None
        if response.status_code >= 400:
            raise DetectorError(
                f"{self.vendor}: HTTP {response.status_code}",
                retryable=retryable_status(response.status_code),
            )
        try:
            return response.json()
        except ValueError:
            raise DetectorError(f"{self.vendor}: response is not JSON", retryable=False) from None


def require_object(vendor: str, body: Any, *keys: str) -> dict[str, Any]:
    """The answer must be a JSON object with ``keys``: anything else is a contract breach."""
    if not isinstance(body, dict) or any(key not in body for key in keys):
        raise DetectorError(f"{vendor}: unexpected response shape", retryable=False)
    return body
