"""One Redis round trip for all the commands issued during one turn of the event loop.

Under load, many requests reach their rate-limit check or idempotency lookup at about the
same moment. Sending each as its own round trip costs a syscall pair and a client-library
pass per command; sending those of one loop turn as a single pipeline costs about that once.
A lone command goes out alone, so an idle server pays nothing extra. Commands stay
independent (no MULTI): each gets its own result or its own error.

Batches travel on a lean pipelined connection of the batcher's own (:mod:`.redis_wire`)
when the client's settings allow it, and through the client library's pipeline otherwise;
both raise the library's exception classes. A caller's ``timeout`` is enforced by that
connection's watchdog (within :data:`~.redis_wire.WATCHDOG_SECONDS`), which is much
cheaper than an ``asyncio.timeout`` per command on the hot path.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from llama_mapper.storage.redis_wire import (
    NO_DEADLINE,
    WireConnection,
    WireSettings,
    pack,
    wire_settings,
)

# (command, future, deadline on the monotonic clock or NO_DEADLINE)
_Pending = tuple[tuple[Any, ...], "asyncio.Future[Any]", float]


class RedisBatcher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[_Pending] = []
        self._flush_scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()  # strong refs until each is done
        self._scripts: dict[str, str] = {}
        self._wire_settings: WireSettings | None = wire_settings(redis)
        self._wire: WireConnection | None = None

    async def execute(self, *command: Any, timeout: float | None = None) -> Any:
        """Run one command (``"SET", key, value, "NX"`` …) as part of the current batch.

        ``timeout`` bounds the wait for its reply; past it the call raises the client
        library's ``TimeoutError`` (a ``RedisError``).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        deadline = NO_DEADLINE if timeout is None else time.monotonic() + timeout
        self._pending.append((command, future, deadline))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # call_soon: every task already runnable gets to queue its command first.
            loop.call_soon(self._start_flush, loop)
        if timeout is None or self._wire_settings is not None:
            return await future
        async with asyncio.timeout(timeout):  # the library's pipeline has no watchdog
            return await future

    async def aclose(self) -> None:
        """Close the batcher's own connection (the client's pool is the caller's to close)."""
        if self._wire is not None:
            self._wire.close()
            self._wire = None

    def script(self, source: str) -> str:
        """Register a Lua script; returns the SHA1 to pass to :meth:`evalsha`."""
        sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's script id
        self._scripts[sha] = source
        return sha

    async def evalsha(
        self, sha: str, keys: list[str], args: list[Any], *, timeout: float | None = None
    ) -> Any:
        """Run a registered script, loading it first if Redis does not know it (yet, or
        any more after a restart). ``timeout`` bounds the whole call, reloading included."""
        started = time.monotonic()
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args, timeout=timeout)
        except NoScriptError:
            await self.execute(
                "SCRIPT", "LOAD", self._scripts[sha], timeout=_left(timeout, started)
            )
            return await self.execute(
                "EVALSHA", sha, len(keys), *keys, *args, timeout=_left(timeout, started)
            )

    def _start_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._wire_settings is not None:
            self._send_on_wire(loop)
            return
        task = loop.create_task(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    def _send_on_wire(self, loop: asyncio.AbstractEventLoop) -> None:
        # No task: the replies resolve the futures from the connection's data callback.
        batch, self._pending = self._pending, []
        self._flush_scheduled = False
        wire = self._wire
        if wire is None or wire.closed or wire.loop is not loop:
            assert self._wire_settings is not None
            wire = self._wire = WireConnection(self._wire_settings)
        waiting: list[tuple[asyncio.Future[Any], float]] = []
        packed: list[bytes] = []
        for command, future, deadline in batch:
            if future.done():  # cancelled before it was sent
                continue
            try:
                packed.append(pack(command))
            except Exception as exc:  # a bad argument fails its own command only
                future.set_exception(exc)
                continue
            waiting.append((future, deadline))
        if waiting:
            wire.send(b"".join(packed), waiting)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._flush_scheduled = False
        replies: list[Any]
        try:
            if len(batch) == 1:  # nothing to share: a plain call is cheaper than a pipeline
                command = batch[0][0]
                replies = [await self.redis.execute_command(*command)]  # type: ignore[no-untyped-call]
            else:
                pipe = self.redis.pipeline(transaction=False)
                for command, _, _ in batch:
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # a lone command's error, or the connection failed
            replies = [exc] * len(batch)
        for (_, future, _), reply in zip(batch, replies, strict=True):
            if future.done():  # the caller timed out or was cancelled
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def _left(timeout: float | None, started: float) -> float | None:
    if timeout is None:
        return None
    return max(timeout - (time.monotonic() - started), 0.0)
