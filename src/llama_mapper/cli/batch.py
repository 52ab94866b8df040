"""``mapper batch``: stream JSONL through the mapper, in order, on every core.

Each input line becomes exactly one output line — a MappingResponse or ``{"error": …}`` —
so outputs can be joined back to inputs by line number. Large inputs are cut into chunks
mapped by a pool of forked workers; ``imap`` keeps the chunks in input order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from llama_mapper.api.responses import error_body
from llama_mapper.audit import MappingEvent
from llama_mapper.audit.evidence import Fingerprinter, event_from_response
from llama_mapper.errors import InvalidJSON, MapperError
from llama_mapper.service import MapperService

CHUNK_LINES = 512
PARALLEL_MIN_BYTES = 1 << 20

_worker: tuple[MapperService, Fingerprinter | None] | None = None


@dataclass
class ChunkResult:
    """What a chunk of lines produced: output lines, unmapped counts and evidence events."""

    lines: list[bytes]
    unmapped: dict[tuple[str, str], int] = field(default_factory=dict)
    events: list[MappingEvent] = field(default_factory=list)


def map_line(
    service: MapperService, line: bytes, line_no: int, fingerprint: Fingerprinter | None = None
) -> tuple[bytes, MappingEvent | None]:
    """One output line, and the line's evidence event when it mapped (and one is wanted)."""
    request_id = f"line-{line_no}"
    event = None
    try:
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise InvalidJSON("line is not valid JSON") from None
        payload = service.parse_payload(data)
        body: dict[str, Any] = service.map_payload(
            payload, route="cli:batch", request_id=request_id
        )
        if fingerprint is not None:
            event = event_from_response(body, fingerprint(payload.output))
    except MapperError as exc:
        body = {"error": error_body(exc, request_id)}
    return orjson.dumps(body) + b"\n", event


def _map_lines(
    service: MapperService, fingerprint: Fingerprinter | None, start: int, lines: list[bytes]
) -> ChunkResult:
    result = ChunkResult([])
    for offset, line in enumerate(lines):
        out, event = map_line(service, line, start + offset, fingerprint)
        result.lines.append(out)
        if event is not None:
            result.events.append(event)
    return result


def _map_chunk(chunk: tuple[int, list[bytes]]) -> ChunkResult:
    assert _worker is not None, "worker started without a service"
    service, fingerprint = _worker
    result = _map_lines(service, fingerprint, *chunk)
    result.unmapped = service.engine.unmapped.drain()
    return result


def _chunks(lines: Iterable[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    chunk: list[bytes] = []
    start = 1
    for number, line in enumerate(lines, start=1):
        if not chunk:
            start = number
        chunk.append(line.rstrip(b"\r\n"))
        if len(chunk) == CHUNK_LINES:
            yield start, chunk
            chunk = []
    if chunk:
        yield start, chunk


def run_batch(
    service: MapperService,
    source: IO[bytes],
    sink: IO[bytes],
    *,
    workers: int,
    on_progress: Callable[[int], None] | None = None,
    fingerprint: Fingerprinter | None = None,
    on_events: Callable[[list[MappingEvent]], None] | None = None,
) -> tuple[int, int]:
    """Map every line of ``source`` into ``sink``; return (lines, errors).

    Unmapped-label counts from the workers are merged into ``service.engine.unmapped``;
    with ``fingerprint``, each chunk's evidence events go to ``on_events`` in input order.
    """
    global _worker  # noqa: PLW0603 - handed to forked workers by inheritance
    if workers <= 1:
        results = (_map_lines(service, fingerprint, *chunk) for chunk in _chunks(source))
        return _drain(results, service, sink, on_progress, on_events)
    _worker = (service, fingerprint)
    context = multiprocessing.get_context("fork")
    try:
        with context.Pool(workers) as pool:
            chunks = pool.imap(_map_chunk, _chunks(source))
            return _drain(chunks, service, sink, on_progress, on_events)
    finally:
        _worker = None


def _drain(
    results: Iterable[ChunkResult],
    service: MapperService,
    sink: IO[bytes],
    on_progress: Callable[[int], None] | None,
    on_events: Callable[[list[MappingEvent]], None] | None,
) -> tuple[int, int]:
    total = errors = 0
    for result in results:
        for line in result.lines:
            sink.write(line)
            errors += line.startswith(b'{"error"')
        total += len(result.lines)
        service.engine.unmapped.merge(result.unmapped)
        if on_events is not None and result.events:
            on_events(result.events)
        if on_progress is not None:
            on_progress(len(result.lines))
    return total, errors


def default_workers(size_bytes: int | None) -> int:
    if size_bytes is not None and size_bytes >= PARALLEL_MIN_BYTES:
        return os.cpu_count() or 1
    return 1
