"""``mapper batch``: stream JSONL through the mapper, in order, on every core.

Each input line becomes exactly one output line — a MappingResponse or ``{"error": …}`` —
so outputs can be joined back to inputs by line number. Large inputs are cut into chunks
mapped by a pool of forked workers; ``imap`` keeps the chunks in input order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from llama_mapper.api.responses import error_body
from llama_mapper.errors import InvalidJSON, MapperError
from llama_mapper.service import MapperService

CHUNK_LINES = 512
PARALLEL_MIN_BYTES = 1 << 20

_worker_service: MapperService | None = None


def map_line(service: MapperService, line: bytes, line_no: int) -> bytes:
    request_id = f"line-{line_no}"
    try:
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise InvalidJSON("line is not valid JSON") from None
        payload = service.parse_payload(data)
        body: dict[str, Any] = service.map_payload(
            payload, route="cli:batch", request_id=request_id
        )
    except MapperError as exc:
        body = {"error": error_body(exc, request_id)}
    return orjson.dumps(body) + b"\n"


def _map_chunk(chunk: tuple[int, list[bytes]]) -> tuple[list[bytes], dict[tuple[str, str], int]]:
    assert _worker_service is not None, "worker started without a service"
    start, lines = chunk
    out = [map_line(_worker_service, line, start + i) for i, line in enumerate(lines)]
    return out, _worker_service.engine.unmapped.drain()


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
    on_progress: Any = None,
) -> tuple[int, int]:
    """Map every line of ``source`` into ``sink``; return (lines, errors).

    Unmapped-label counts from the workers are merged into ``service.engine.unmapped``.
    """
    global _worker_service  # noqa: PLW0603 - handed to forked workers by inheritance
    total = errors = 0
    if workers <= 1:
        results: Iterable[tuple[list[bytes], dict[tuple[str, str], int]]] = (
            ([map_line(service, line, start + i) for i, line in enumerate(lines)], {})
            for start, lines in _chunks(source)
        )
        total, errors = _drain(results, service, sink, on_progress)
        return total, errors
    _worker_service = service
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        total, errors = _drain(pool.imap(_map_chunk, _chunks(source)), service, sink, on_progress)
    _worker_service = None
    return total, errors


def _drain(
    results: Iterable[tuple[list[bytes], dict[tuple[str, str], int]]],
    service: MapperService,
    sink: IO[bytes],
    on_progress: Any,
) -> tuple[int, int]:
    total = errors = 0
    for lines, unmapped in results:
        for line in lines:
            sink.write(line)
            errors += line.startswith(b'{"error"')
        total += len(lines)
        service.engine.unmapped.merge(unmapped)
        if on_progress is not None:
            on_progress(len(lines))
    return total, errors


def default_workers(size_bytes: int | None) -> int:
    if size_bytes is not None and size_bytes >= PARALLEL_MIN_BYTES:
        return os.cpu_count() or 1
    return 1
