"""Recording the evidence of answered mappings, with the configured durability.

async (default): the events join the write-behind queue and the answer goes out at once;
a full queue either waits (``block``) or refuses with 503 (``shed``). sync: the answer is
sent only after the events are committed, and a failure to commit withholds it (503).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from llama_mapper.audit.writer import QueueFull, WriterStopped
from llama_mapper.errors import BackendUnavailable, EvidenceBacklogged
from llama_mapper.runtime import Runtime
from llama_mapper.secrets import SecretError


async def record_mappings(
    runtime: Runtime, mapped: Sequence[tuple[object, dict[str, Any]]]
) -> None:
    """Append one MappingEvent per ``(raw output, MappingResponse)`` pair."""
    writer, fingerprint = runtime.events, runtime.fingerprint
    if writer is None or fingerprint is None or not mapped:
        return
    try:
        to_event = runtime.evidence_item
        events = [to_event(body, fingerprint(output)) for output, body in mapped]
        if runtime.settings.audit.durability == "sync":
            await asyncio.gather(*(writer.submit_and_wait(event) for event in events))
        else:
            await writer.submit_many(events)
    except QueueFull:
        raise EvidenceBacklogged(
            "the evidence queue is full; retry shortly", headers={"Retry-After": "1"}
        ) from None
    except (WriterStopped, SecretError, SQLAlchemyError, OSError) as exc:
        raise BackendUnavailable(
            f"the mapping could not be recorded as evidence ({type(exc).__name__}); retry later"
        ) from None
