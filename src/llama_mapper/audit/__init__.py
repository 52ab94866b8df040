"""Evidence store: tamper-evident, per-tenant hash chains of mapping events.

Events hold labels, scores, ids, versions and a keyed fingerprint of the raw output, never
the raw output itself, so the store can be exported to auditors as it is.
"""

from __future__ import annotations

from llama_mapper.audit.chain import (
    GENESIS_HASH,
    ChainVerifier,
    StoredEvent,
    VerifyResult,
    canonical_bytes,
    chain_hash,
    verify_chain,
)
from llama_mapper.audit.events import MappingEvent
from llama_mapper.audit.store import CorruptEventError, EventStore

__all__ = [
    "GENESIS_HASH",
    "ChainVerifier",
    "CorruptEventError",
    "EventStore",
    "MappingEvent",
    "StoredEvent",
    "VerifyResult",
    "canonical_bytes",
    "chain_hash",
    "verify_chain",
]
