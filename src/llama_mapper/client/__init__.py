"""Python SDK for the llama-mapper HTTP API.

Responses are the same pydantic models the server documents (:mod:`llama_mapper.schemas`),
so a caller gets typed ``MappingResponse``/``BatchResponse`` objects and one error type,
:class:`MapperAPIError`, carrying the API's ``ErrorBody``.
"""

from llama_mapper.client._core import RetryPolicy
from llama_mapper.client.async_client import AsyncMapperClient
from llama_mapper.client.errors import MapperAPIError, MapperClientError, MapperConnectionError
from llama_mapper.client.sync_client import MapperClient
from llama_mapper.schemas import (
    BatchItemError,
    BatchResponse,
    ErrorBody,
    MapperPayload,
    MappingResponse,
)

__all__ = [
    "AsyncMapperClient",
    "BatchItemError",
    "BatchResponse",
    "ErrorBody",
    "MapperAPIError",
    "MapperClient",
    "MapperClientError",
    "MapperConnectionError",
    "MapperPayload",
    "MappingResponse",
    "RetryPolicy",
]
