"""A remote OPA server over its REST Data API: ``POST /v1/data/<path>`` with
``{"input": ...}`` answers ``{"result": ...}`` (absent when the rule is undefined).

The input and the result follow the same contract as the in-process Rego engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from detector_orchestration.policy.rego import RegoError, RegoResult, interpret


class OpaUnavailable(Exception):
    """OPA did not answer usefully; the message holds no input data."""


class OpaClient:
    def __init__(
        self, base_url: str, *, timeout: float, http: httpx.AsyncClient | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._owned = http is None

    async def evaluate(self, path: str, input_doc: Mapping[str, Any]) -> RegoResult:
        url = f"{self.base_url}/v1/data/{path}"
        try:
            response = await self._http.post(
                url, json={"input": dict(input_doc)}, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise OpaUnavailable(f"OPA unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise OpaUnavailable(f"OPA answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise OpaUnavailable("OPA answered with invalid JSON") from None
        if not isinstance(body, dict):
            raise OpaUnavailable("OPA answered with a non-object body")
        try:
            return interpret(body.get("result"))
        except RegoError as exc:
            raise OpaUnavailable(f"OPA result outside the contract: {exc}") from None

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()
