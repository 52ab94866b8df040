"""The mapper as orch sees it: native detector output in, a MappingResponse out.

In-process by default (the mapping service runs inside orch: one command, no second
server), over HTTP with ``llama_mapper.client`` when ``ORCH_MAPPER__URL`` is set. Either
way the mapper's adapters do all normalization; orch keeps no mapping table.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from llama_mapper.errors import BackendUnavailable, InvalidOutput, MapperError
from llama_mapper.service import MapperService


class MapperUnavailable(BackendUnavailable):
    """The remote mapper could not be reached or failed (503, retryable)."""


class Mapper(Protocol):
    async def map(self, pack: str, output: Any, tenant_id: str) -> dict[str, Any]:
        """The mapper's MappingResponse as plain data; ``MapperError`` when it refuses."""
        ...

    async def aclose(self) -> None: ...


class InProcessMapper:
    def __init__(self, service: MapperService, route: str = "orch") -> None:
        self.service = service
        self.route = route

    async def map(self, pack: str, output: Any, tenant_id: str) -> dict[str, Any]:
        payload = self.service.parse_payload(
            {"detector": pack, "output": output, "tenant_id": tenant_id}
        )
        return await self.service.amap_payload(payload, route=self.route, tenant=tenant_id)

    async def aclose(self) -> None:
        return None


class HttpMapper:
    """A remote mapper. Its client retries transient failures itself; this is the mapper
    link, not a detector, so the executor's single retry layer does not apply to it."""

    def __init__(self, url: str, *, api_key_env: str, timeout: float) -> None:
        from llama_mapper.client import AsyncMapperClient

        self.client = AsyncMapperClient(
            url, api_key=os.environ.get(api_key_env) or None, timeout=timeout, max_retries=1
        )

    async def map(self, pack: str, output: Any, tenant_id: str) -> dict[str, Any]:
        from llama_mapper.client.errors import MapperAPIError, MapperClientError

        try:
            response = await self.client.map(pack, output, tenant_id=tenant_id)
        except MapperAPIError as exc:
            if exc.status in (400, 422):
                raise InvalidOutput(f"the mapper refused the output ({exc.error_code})") from None
            raise MapperUnavailable(f"the mapper answered {exc.status} {exc.error_code}") from None
        except MapperClientError as exc:
            raise MapperUnavailable(f"the mapper is unreachable ({type(exc).__name__})") from None
        body: dict[str, Any] = response.model_dump(mode="json")
        return body

    async def aclose(self) -> None:
        await self.client.aclose()


__all__ = ["HttpMapper", "InProcessMapper", "Mapper", "MapperError", "MapperUnavailable"]
