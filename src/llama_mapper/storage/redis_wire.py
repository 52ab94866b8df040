"""A lean pipelined Redis connection for :class:`~llama_mapper.storage.redis_batch.RedisBatcher`.

Why not the client library's pipeline: profiling ``mapper serve`` under load showed the
library's per-command packing, per-reply parsing (each reply read under its own timeout)
and per-pipeline bookkeeping costing ~60-90 µs of CPU per command — more than the rest of
the rate-limit and idempotency logic together. This module does only what the batcher
needs: RESP2 commands written back to back on one connection, replies matched to their
futures in order as they arrive (a callback, no task per batch), one deadline per
connection instead of one per reply.

It speaks to plain TCP or Unix-socket servers with optional ``AUTH`` and ``SELECT``,
taking those settings from the client library's own connection pool so there is one place
to configure Redis. Anything it does not handle (TLS, credential providers, decoded
replies, client names) is detected by :func:`wire_settings` and the batcher then keeps
using the library. Errors are the library's own classes (``ConnectionError``,
``TimeoutError``, ``ResponseError`` and its subclasses such as ``NoScriptError``) so
callers handle one set of exceptions whichever path served them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, InvalidResponse, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

# The library's mapping of error prefixes (NOSCRIPT, WRONGPASS, ...) to exception classes.
from redis._parsers.base import BaseParser  # isort: skip

#: An idle connection is closed after this long, so a process that stops using Redis (or
#: a test whose event loop ends) does not hold a socket open forever.
IDLE_CLOSE_SECONDS = 30.0
#: How often the connection checks its deadline and idleness (one timer per connection).
WATCHDOG_SECONDS = 0.1
_CRLF = b"\r\n"
#: The deadline of a command whose caller set none.
NO_DEADLINE = math.inf

Waiter = tuple["asyncio.Future[Any]", float]


@dataclass(frozen=True)
class WireSettings:
    host: str | None
    port: int
    path: str | None
    db: int
    username: str | None
    password: str | None
    connect_timeout: float | None
    read_timeout: float | None


def wire_settings(redis: Redis) -> WireSettings | None:
    """How to reach the server of ``redis`` directly, or ``None`` if this module cannot."""
    pool = getattr(redis, "connection_pool", None)
    if pool is None:
        return None
    cls = getattr(pool, "connection_class", None)
    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {})
    if cls not in (Connection, UnixDomainSocketConnection):
        return None  # TLS, sentinel or a custom connection class
    if (
        kwargs.get("decode_responses")
        or kwargs.get("credential_provider") is not None
        or kwargs.get("client_name")
        or kwargs.get("redis_connect_func") is not None
    ):
        return None
    connect_timeout = kwargs.get("socket_connect_timeout", kwargs.get("socket_timeout"))
    return WireSettings(
        host=None if cls is UnixDomainSocketConnection else str(kwargs.get("host", "localhost")),
        port=int(kwargs.get("port", 6379)),
        path=str(kwargs["path"]) if cls is UnixDomainSocketConnection else None,
        db=int(kwargs.get("db", 0) or 0),
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        connect_timeout=connect_timeout,
        read_timeout=kwargs.get("socket_timeout"),
    )


def pack(args: Sequence[Any]) -> bytes:
    """One command in RESP: an array of bulk strings (str as UTF-8, int, float by repr).

    Exact type checks first: this runs for every command, and str, bytes and int are
    nearly all it ever sees. Short strings (command names, script ids, rate-limit keys and
    quota arguments, repeated on every request) are encoded once and kept.
    """
    parts = [b"*%d\r\n" % len(args)]
    chunks = _CHUNKS
    for arg in args:
        kind = type(arg)
        if kind is str:
            chunk = chunks.get(arg)
            if chunk is None:
                data = arg.encode()
                chunk = b"$%d\r\n%s\r\n" % (len(data), data)
                if len(arg) <= _CACHED_CHARS:
                    if len(chunks) >= _CACHED_CHUNKS:
                        chunks.clear()  # bounded; the hot ones come straight back
                    chunks[arg] = chunk
            parts.append(chunk)
            continue
        if kind is bytes:
            data = arg
        elif kind is int:
            data = b"%d" % arg
        else:
            data = _encode_other(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


_CHUNKS: dict[str, bytes] = {}
_CACHED_CHARS = 48
_CACHED_CHUNKS = 4096


def _encode_other(arg: object) -> bytes:
    # Subclasses and the rarer types, with the client library's rules.
    if isinstance(arg, bool):
        raise DataError("a bool is not a Redis argument; send an int or a string")
    if isinstance(arg, bytes):
        return bytes(arg)
    if isinstance(arg, str):
        return str(arg).encode()
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    if isinstance(arg, memoryview):
        return arg.tobytes()
    raise DataError(f"invalid Redis argument of type {type(arg).__name__}")


class _Incomplete(Exception):
    """The buffer ends inside a reply; wait for more bytes."""


def _error(message: str) -> RedisError:
    # Not always a ResponseError: NOAUTH and WRONGPASS become AuthenticationError.
    error: RedisError = BaseParser.parse_error(message)  # type: ignore[no-untyped-call]
    return error


def parse_reply(buf: bytes, pos: int) -> tuple[Any, int]:
    """The RESP2 reply starting at ``buf[pos]`` and the position after it.

    Errors come back as exception instances (not raised): each belongs to one caller.
    Raises :class:`_Incomplete` when the reply is not all there yet and
    ``InvalidResponse`` for bytes that are not RESP.
    """
    end = buf.find(_CRLF, pos)
    if end < 0:
        raise _Incomplete
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        size = int(buf[pos + 1 : end])
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buf) < stop + 2:
            raise _Incomplete
        return buf[end + 2 : stop], stop + 2
    if kind == 58:  # : integer
        return int(buf[pos + 1 : end]), end + 2
    if kind == 43:  # + simple string
        return buf[pos + 1 : end], end + 2
    if kind == 42:  # * array
        count = int(buf[pos + 1 : end])
        if count < 0:
            return None, end + 2
        items: list[Any] = []
        pos = end + 2
        size_of = len(buf)
        for _ in range(count):
            if pos < size_of and buf[pos] == 36:  # a bulk string, inline: the usual item
                end = buf.find(_CRLF, pos)
                if end < 0:
                    raise _Incomplete
                size = int(buf[pos + 1 : end])
                if size < 0:
                    items.append(None)
                    pos = end + 2
                    continue
                stop = end + 2 + size
                if size_of < stop + 2:
                    raise _Incomplete
                items.append(buf[end + 2 : stop])
                pos = stop + 2
            else:
                item, pos = parse_reply(buf, pos)
                items.append(item)
        return items, pos
    if kind == 45:  # - error
        return _error(buf[pos + 1 : end].decode("utf-8", "replace")), end + 2
    raise InvalidResponse(f"protocol error: unexpected reply type {chr(kind)!r}")


class _Protocol(asyncio.Protocol):
    """Replies are matched to the futures of the commands, first in, first out."""

    def __init__(self, wire: WireConnection) -> None:
        self.wire = wire
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        wire = self.wire
        buf = self.buffer + data if self.buffer else data
        pos = 0
        waiting = wire.waiting
        try:
            while pos < len(buf):
                reply, pos = parse_reply(buf, pos)
                if not waiting:
                    raise InvalidResponse("protocol error: a reply nobody asked for")
                future = waiting.popleft()[0]
                if future.done():  # its caller gave up (or its deadline passed)
                    continue
                if isinstance(reply, RedisError):  # an error reply, this command's own
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except _Incomplete:
            pass
        except (InvalidResponse, ValueError) as exc:
            wire.fail(InvalidResponse(f"protocol error: {type(exc).__name__}"))
            return
        self.buffer = buf[pos:]
        wire.progress = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        self.wire.fail(RedisConnectionError("Connection closed by server."))


class WireConnection:
    """One connection; :meth:`send` writes a batch now or as soon as it is connected.

    A watchdog runs every :data:`WATCHDOG_SECONDS` while the connection is open: it fails
    each command whose own deadline has passed (its reply, when it comes, is skipped), fails
    the whole connection when no reply has come for ``read_timeout`` while commands wait,
    and closes it after :data:`IDLE_CLOSE_SECONDS` without use.
    """

    def __init__(self, settings: WireSettings) -> None:
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        #: Commands written and not yet answered: (future, deadline), oldest first.
        self.waiting: deque[Waiter] = deque()
        self.progress = time.monotonic()  # last reply (or first command after an idle time)
        self._transport: asyncio.Transport | None = None
        self._backlog: list[tuple[bytes, list[Waiter]]] = []
        self._connecting: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def send(self, packed: bytes, waiters: list[Waiter]) -> None:
        if self.closed:
            error = RedisConnectionError("connection closed")
            for future, _ in waiters:
                if not future.done():
                    future.set_exception(error)
            return
        if self._transport is None:
            self._backlog.append((packed, waiters))
            if self._connecting is None:
                self._connecting = self.loop.create_task(self._connect())
                self._arm()
            return
        if not self.waiting:
            self.progress = time.monotonic()
        self.waiting.extend(waiters)
        self._transport.write(packed)

    async def _connect(self) -> None:
        settings = self.settings
        try:
            async with asyncio.timeout(settings.connect_timeout):
                if settings.path is not None:
                    transport, _ = await self.loop.create_unix_connection(
                        lambda: _Protocol(self), settings.path
                    )
                else:
                    transport, _ = await self.loop.create_connection(
                        lambda: _Protocol(self), settings.host or "localhost", settings.port
                    )
        except (OSError, TimeoutError) as exc:
            where = settings.path or f"{settings.host}:{settings.port}"
            self.fail(RedisConnectionError(f"Error connecting to {where}: {type(exc).__name__}"))
            return
        if self.closed:  # closed while connecting
            transport.abort()
            return
        self._transport = transport
        handshake: list[list[str | int]] = []
        if settings.password is not None:
            auth: list[str | int] = ["AUTH", settings.password]
            if settings.username:
                auth.insert(1, settings.username)
            handshake.append(auth)
        if settings.db:
            handshake.append(["SELECT", settings.db])
        futures = [self.loop.create_future() for _ in handshake]
        if handshake:
            self.waiting.extend((future, NO_DEADLINE) for future in futures)
            transport.write(b"".join(pack(command) for command in handshake))
        backlog, self._backlog = self._backlog, []
        for packed, waiters in backlog:  # behind the handshake, in order
            self.waiting.extend(waiters)
            transport.write(packed)
        self.progress = time.monotonic()
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):  # a refused AUTH/SELECT: nothing here works
                reason = type(result).__name__
                self.fail(RedisConnectionError(f"Redis refused the handshake: {reason}"))
                return

    def _arm(self) -> None:
        self._watchdog = self.loop.call_later(WATCHDOG_SECONDS, self._check)

    def _check(self) -> None:
        self._watchdog = None
        if self.closed:
            return
        now = time.monotonic()
        idle = now - self.progress
        timeout = self.settings.read_timeout
        if self.waiting and self._transport is not None:
            if timeout is not None and idle > timeout:
                self.fail(RedisTimeoutError("Timeout reading from Redis"))
                return
        elif not self._backlog and idle > IDLE_CLOSE_SECONDS:
            self.fail(RedisConnectionError("idle connection closed"))
            return
        self._expire(now)
        self._arm()

    def _expire(self, now: float) -> None:
        for waiters in (self.waiting, *(w for _, w in self._backlog)):
            for future, deadline in waiters:
                if deadline <= now and not future.done():
                    future.set_exception(RedisTimeoutError("Timeout waiting for a Redis reply"))

    def fail(self, error: Exception) -> None:
        """Close for good, failing every command still waiting for a reply."""
        if self.closed:
            return
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            self._transport.abort()
        pending = list(self.waiting)
        self.waiting.clear()
        for _, waiters in self._backlog:
            pending.extend(waiters)
        self._backlog = []
        for future, _ in pending:
            if not future.done():
                future.set_exception(error)

    def close(self) -> None:
        self.fail(RedisConnectionError("connection closed"))
