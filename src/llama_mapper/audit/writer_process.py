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

The child is ``python -m llama_mapper.audit.writer_process`` talking length-prefixed
frames over its stdin/stdout (so nothing depends on how the parent's ``__main__`` was
started, as multiprocessing's spawn would). Its first frame is the parent's ``Settings``
(pickled over that private pipe, never a command line): the child opens the database the
way the runtime does, password from the SecretProvider on every new connection, so a
rotated database password reaches it without a restart. It ignores SIGINT/SIGTERM (a
Ctrl-C or a service stop reaches the whole process group, and the parent's shutdown still
needs it to flush) and exits when its pipe closes: on :meth:`ProcessStore.close` or when
the parent dies. A child that dies is restarted on the next batch, which the writer
retries. Drafts hold no raw content (only the answer), and nothing of them is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import struct
import sys
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import orjson

from llama_mapper.audit.evidence import Sealed, event_from_response, new_event_id

if TYPE_CHECKING:
    from llama_mapper.audit.events import MappingEvent
    from llama_mapper.config.settings import Settings

#: What the request process queues: the answered MappingResponse, the fingerprint of the
#: raw output (hex HMAC, key version) and, when the tenant keeps metadata, the event id
#: with the fields already sealed for it and their wrapped data key. Sealing happens in
#: the request process because the event id is bound into the ciphertext (AAD).
Kept = tuple[str, dict[str, Any], tuple[str, str]]
Draft = tuple[Mapping[str, Any], tuple[str, str], Kept | None]
_OK = b"ok"
_READY = b"ready"
_LENGTH = struct.Struct(">I")


class WriterProcessError(OSError):
    """The child could not append a batch (its exception type name is the message), or
    the child itself died. An ``OSError`` so the API answers 503 as for any backend."""


def draft(
    response: Mapping[str, Any],
    fingerprint: tuple[str, str],
    sealed: Sealed | None = None,
) -> Draft:
    """The queued form of one answered mapping (no copy: the response is not reused)."""
    if sealed is None:
        return (response, fingerprint, None)
    event_id = new_event_id()
    kept = sealed(event_id)
    return (response, fingerprint, None if kept is None else (event_id, kept[0], kept[1]))


def _event(
    response: Mapping[str, Any], fp: Sequence[str], kept: Sequence[Any] | None
) -> MappingEvent:
    """The event of one draft as it crossed the pipe (JSON: tuples arrive as lists)."""
    fingerprint = (fp[0], fp[1])
    if kept is None:
        return event_from_response(response, fingerprint)
    event_id, fields, (key_id, wrapped) = kept
    return event_from_response(
        response, fingerprint, lambda _: (fields, (key_id, wrapped)), event_id=event_id
    )


class ProcessStore:
    """An :class:`~llama_mapper.audit.writer.EventSink` of drafts, backed by a child process.

    The child opens the database ``settings`` describe (see the module docstring).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = pickle.dumps(settings)
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The running child's pid (``None`` when there is none)."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the child now and wait until it is ready (else the first batch waits)."""
        async with self._lock:
            await self._ready_process()

    async def append(self, drafts: Sequence[Draft]) -> Sequence[object]:
        if not drafts:
            return []
        payload = orjson.dumps([[response, list(fp), kept] for response, fp, kept in drafts])
        async with self._lock:  # one batch in flight: the pipe carries one conversation
            process = await self._ready_process()
            try:
                await _send(process, payload)
                reply = await _receive(process)
            except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
                await self._discard()
                raise WriterProcessError(
                    f"evidence writer process lost ({type(exc).__name__})"
                ) from None
        if reply != _OK:
            raise WriterProcessError(reply.decode("ascii", "replace"))
        return drafts

    async def close(self) -> None:
        """Close the child's stdin (it finishes its batch and exits) and wait for it."""
        async with self._lock:
            await self._discard()

    async def _ready_process(self) -> asyncio.subprocess.Process:
        """A live, ready child; (re)starts one when there is none."""
        if self._process is not None and self._process.returncode is None:
            return self._process
        await self._discard()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._process = process
        try:
            await _send(process, self._settings)
            reply = await _receive(process)
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            await self._discard()
            raise WriterProcessError(
                f"evidence writer process did not start ({type(exc).__name__})"
            ) from None
        if reply != _READY:
            await self._discard()
            raise WriterProcessError(reply.decode("ascii", "replace"))
        return process

    async def _discard(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:  # pragma: no cover - a wedged child
            process.kill()
            await process.wait()


async def _send(process: asyncio.subprocess.Process, payload: bytes) -> None:
    assert process.stdin is not None
    process.stdin.write(_LENGTH.pack(len(payload)) + payload)
    await process.stdin.drain()


async def _receive(process: asyncio.subprocess.Process) -> bytes:
    assert process.stdout is not None
    (length,) = _LENGTH.unpack(await process.stdout.readexactly(_LENGTH.size))
    return await process.stdout.readexactly(length)


# ---------------------------------------------------------------------------- the child


def _read_frame(stream: IO[bytes]) -> bytes | None:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None  # the parent closed the pipe or died
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    return data if len(data) == length else None


def _write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


async def _serve(settings: Settings, inbox: IO[bytes], outbox: IO[bytes]) -> None:
    from llama_mapper.audit.store import EventStore
    from llama_mapper.runtime import database_engine, secret_provider

    engine = database_engine(settings, secret_provider(settings))
    store = EventStore(engine)
    try:
        _write_frame(outbox, _READY)
        while (payload := _read_frame(inbox)) is not None:  # this process does nothing else
            try:
                events = [_event(*item) for item in orjson.loads(payload)]
                await store.append(events)
                reply = _OK
            except Exception as exc:  # reported by type only: messages may echo data
                reply = type(exc).__name__.encode()
            _write_frame(outbox, reply)
    finally:
        await engine.dispose()


def main() -> None:
    """Entry point of the child: frames on stdin, replies on a private copy of stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    outbox = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the protocol
    inbox = sys.stdin.buffer
    frame = _read_frame(inbox)
    if frame is None:
        return
    settings = pickle.loads(frame)  # noqa: S301 - written by our own parent, private pipe
    with contextlib.suppress(OSError):  # a broken pipe: the parent went away
        asyncio.run(_serve(settings, inbox, outbox))


if __name__ == "__main__":
    main()
