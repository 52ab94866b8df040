"""Recording the evidence of answered mappings, with the configured durability.

async (default): the events join the write-behind queue and the answer goes out at once;
a full queue either waits (``block``) or refuses with 503 (``shed``). sync: the answer is
sent only after the events are committed, and a failure to commit withholds it (503).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from llama_mapper.audit.writer import QueueFull, WriterStopped
from llama_mapper.crypto import DecryptionError
from llama_mapper.errors import BackendUnavailable, EvidenceBacklogged, RawContentRejected
from llama_mapper.privacy.guard import RawContentError
from llama_mapper.runtime import Runtime
from llama_mapper.secrets import SecretError


async def record_mappings(
    runtime: Runtime,
    mapped: Sequence[tuple[object, dict[str, Any]]],
    metadata: Sequence[Mapping[str, Any] | None] | None = None,
) -> None:
    """Append one MappingEvent per ``(raw output, MappingResponse)`` pair.

    ``metadata[i]`` is the i-th payload's metadata: of it only the keys the tenant keeps
    (``audit.keep_metadata``) are stored, encrypted; by default none.
    """
    writer, fingerprint = runtime.events, runtime.fingerprint
    if writer is None or fingerprint is None or not mapped:
        return
    metas = list(metadata) if metadata is not None else [None] * len(mapped)
    try:
        to_event = runtime.evidence_item
        events = [
            to_event(body, fingerprint(output), _sealer(runtime, body, meta))
            for (output, body), meta in zip(mapped, metas, strict=True)
        ]
        if runtime.settings.audit.durability == "sync":
            await asyncio.gather(*(writer.submit_and_wait(event) for event in events))
        else:
            await writer.submit_many(events)
    except QueueFull:
        raise EvidenceBacklogged(
            "the evidence queue is full; retry shortly", headers={"Retry-After": "1"}
        ) from None
    except RawContentError as exc:
        raise RawContentRejected(
            f"{exc.path} looks like raw content ({exc.reason}); kept metadata must be "
            "identifiers, never the analysed text"
        ) from None
    except (WriterStopped, SecretError, SQLAlchemyError, OSError, DecryptionError) as exc:
        raise BackendUnavailable(
            f"the mapping could not be recorded as evidence ({type(exc).__name__}); retry later"
        ) from None


def _sealer(
    runtime: Runtime, body: Mapping[str, Any], metadata: Mapping[str, Any] | None
) -> Callable[[str], tuple[dict[str, Any], tuple[str, str]] | None] | None:
    """Seals the tenant's kept fields of ``metadata`` for an event id; None: keep nothing."""
    sealer = runtime.sealer
    if sealer is None or not metadata:
        return None
    tenant = str(body["provenance"]["tenant_id"])
    keep = runtime.service.tenants.for_tenant(tenant).audit.keep_metadata
    if not keep:
        return None
    return lambda event_id: sealer.seal(tenant, event_id, metadata, keep)
