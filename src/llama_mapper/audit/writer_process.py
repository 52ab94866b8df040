"""Append evidence from a child process, so chaining and inserts use another CPU core.

Profiling ``/map/batch`` with the store on showed the request process spending about 60 us
per item on evidence (building the event, canonical JSON, SHA-256, SQLAlchemy's executemany,
projection upserts) next to about 37 us on the mapping itself: all on one event loop, so
batch throughput fell to a third. Threads cannot help (that work holds the GIL), so
``audit.writer = "process"`` moves it into a dedicated child process:

* the request process only fingerprints the raw output (it must: the raw output never
  leaves it) and queues a *draft*, the ``(MappingResponse, fingerprint)`` pair, in the
  same bounded :class:`~llama_mapper.audit.writer.EventWriter` as before (batching,
  backpressure, sync waiters and shutdown flush are unchanged);
* each batch crosses a pipe as one orjson document; the child builds the events, appends
  them with :meth:`EventStore.append` (one transaction: chain, heads, read models) and
  answers ``ok`` only after the commit, or the exception's type name. So ``sync`` still
  answers only after the commit, and an ``async`` kill -9 loses what it lost before (the
  queue), plus nothing: a batch the child was writing is committed or rolled back whole.

The child ignores SIGINT/SIGTERM (a Ctrl-C or a service stop reaches the whole process
group, and the parent's shutdown still needs it to flush) and exits when its pipe closes:
on :meth:`ProcessStore.close` or when the parent dies. A child that dies is restarted on
the next batch, which the writer retries. Drafts hold no raw content (only the answer),
and nothing of them is logged.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import orjson

from llama_mapper.audit.evidence import event_from_response

#: What the request process queues: the answered MappingResponse and the fingerprint of
#: the raw output (hex HMAC, key version).
Draft = tuple[Mapping[str, Any], tuple[str, str]]
_OK = b"ok"
_READY = b"ready"


class WriterProcessError(OSError):
    """The child could not append a batch (its exception type name is the message), or
    the child itself died. An ``OSError`` so the API answers 503 as for any backend."""


def draft(response: Mapping[str, Any], fingerprint: tuple[str, str]) -> Draft:
    """The queued form of one answered mapping (no copy: the response is not reused)."""
    return (response, fingerprint)


class ProcessStore:
    """An :class:`~llama_mapper.audit.writer.EventSink` of drafts, backed by a child process.

    ``url`` may carry the database password: it goes to the child through the spawn pipe,
    never onto a command line or into a log.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the child now and wait until it is ready (else the first batch waits)."""
        async with self._lock:
            await self._ready_connection()

    async def append(self, drafts: Sequence[Draft]) -> Sequence[object]:
        if not drafts:
            return []
        payload = orjson.dumps([[response, list(fp)] for response, fp in drafts])
        async with self._lock:  # one batch in flight: the pipe carries one conversation
            connection = await self._ready_connection()
            try:
                reply = await asyncio.to_thread(_round_trip, connection, payload)
            except (OSError, EOFError) as exc:
                self._discard()
                raise WriterProcessError(
                    f"evidence writer process lost ({type(exc).__name__})"
                ) from None
        if reply != _OK:
            raise WriterProcessError(reply.decode("ascii", "replace"))
        return drafts

    async def close(self) -> None:
        """Close the pipe (the child finishes and exits) and wait for the child."""
        process = self._process
        self._discard()
        if process is not None:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():  # pragma: no cover - a wedged child
                process.kill()

    async def _ready_connection(self) -> Connection:
        """The pipe to a live, ready child; (re)starts one when there is none."""
        if self._connection is not None and self._process is not None:
            if self._process.is_alive():
                return self._connection
            self._discard()
        # spawn, not fork: the parent runs an event loop and driver threads.
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_child_main, args=(self._url, child), name="llama-mapper-evidence-writer"
        )
        process.daemon = True
        process.start()
        child.close()
        self._process, self._connection = process, parent
        try:
            reply = await asyncio.to_thread(parent.recv_bytes)
        except (OSError, EOFError) as exc:
            self._discard()
            raise WriterProcessError(
                f"evidence writer process did not start ({type(exc).__name__})"
            ) from None
        if reply != _READY:  # pragma: no cover - only this module writes to the pipe
            self._discard()
            raise WriterProcessError("evidence writer process did not start")
        return parent

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._process = None


def _round_trip(connection: Connection, payload: bytes) -> bytes:
    connection.send_bytes(payload)
    return connection.recv_bytes()


def _child_main(url: str, connection: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(_serve(url, connection))


async def _serve(url: str, connection: Connection) -> None:
    from llama_mapper.audit.store import EventStore
    from llama_mapper.storage.db.engine import create_engine

    engine = create_engine(url)
    store = EventStore(engine)
    try:
        connection.send_bytes(_READY)
        while True:
            try:
                payload = connection.recv_bytes()  # this process does nothing else
            except (EOFError, OSError):
                return  # the parent closed the pipe or died
            try:
                events = [
                    event_from_response(response, (fp[0], fp[1]))
                    for response, fp in orjson.loads(payload)
                ]
                await store.append(events)
                reply = _OK
            except Exception as exc:  # reported by type only: messages may echo data
                reply = type(exc).__name__.encode()
            try:
                connection.send_bytes(reply)
            except OSError:
                return
    finally:
        await engine.dispose()
