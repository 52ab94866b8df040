"""Idempotent requests: replay a completed response for a repeated ``Idempotency-Key``."""

from llama_mapper.idempotency.keys import fingerprint, scope_key, valid_idempotency_key
from llama_mapper.idempotency.store import (
    Begin,
    IdempotencyStore,
    IdempotencyUnavailable,
    MemoryIdempotencyStore,
    Outcome,
    RedisIdempotencyStore,
    StoredResponse,
)

__all__ = [
    "Begin",
    "IdempotencyStore",
    "IdempotencyUnavailable",
    "MemoryIdempotencyStore",
    "Outcome",
    "RedisIdempotencyStore",
    "StoredResponse",
    "fingerprint",
    "scope_key",
    "valid_idempotency_key",
]
