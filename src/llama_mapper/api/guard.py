"""Request protection for the mapping routes: API key → tenant → rate limit → idempotency.

One place decides, in this order, so that every route gets the same semantics:
1. the caller is authenticated (or auth is explicitly off); failed attempts are charged to
   the client IP so invalid keys never get a bucket of their own;
2. any tenant the request names must be the key's tenant;
3. the key's and tenant's buckets are charged ``cost`` (a batch costs its item count);
4. an ``Idempotency-Key`` replays the stored answer, refuses a different body (422) or a
   duplicate still in flight (409), and records the new answer.

With Redis behind 3 and 4, the key is *claimed* in the same round trip as the rate-limit
check (one wait instead of two on the hot path), but the claim's outcome is acted on only
after step 3 allowed the request, and a refused request frees its claim: the answers are
the ones the order above gives. While a refused request's claim exists (one round trip), a
duplicate sent at that very moment is told 409, as for any request in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import Request
from starlette.responses import Response

from llama_mapper.api.responses import error_response
from llama_mapper.auth.errors import AuthenticationError
from llama_mapper.auth.keys import MAP_WRITE
from llama_mapper.auth.model import Principal
from llama_mapper.auth.service import authorize
from llama_mapper.errors import (
    BackendUnavailable,
    BatchTooLarge,
    IdempotencyConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    MapperError,
    RateLimited,
)
from llama_mapper.idempotency import (
    Begin,
    IdempotencyStore,
    IdempotencyUnavailable,
    Outcome,
    RedisIdempotencyStore,
    StoredResponse,
    fingerprint,
    scope_key,
    valid_idempotency_key,
)
from llama_mapper.ratelimit import (
    RATE_LIMIT_HEADER_NAMES,
    Decision,
    client_ip,
    identity_buckets,
    rate_limit_headers,
    raw_rate_limit_headers,
)
from llama_mapper.runtime import Runtime

Handler = Callable[[str | None], Awaitable[Response]]
REPLAYED = "Idempotent-Replayed"
#: Set when the store was down and the answer could not be recorded for replay.
STATUS_HEADER = "Idempotency-Status"
#: Answers worth replaying: final ones. Conflicts, limits and server trouble are not.
_NOT_STORED = {409, 429}


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


class RequestGuard:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def _ip(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        # Several X-Forwarded-For headers form one chain, in order.
        forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
        return client_ip(peer, forwarded, self.settings.rate_limit.trusted_proxies)

    async def principal(self, request: Request) -> Principal | None:
        """FastAPI dependency: runs before the body is validated, so strangers learn nothing."""
        auth = self.runtime.auth
        if auth is None:
            return None
        presented = _presented_key(request)
        try:
            if presented is None:
                raise AuthenticationError("missing API key: send Authorization: Bearer <key>")
            return await auth.authenticate(presented)
        except AuthenticationError as exc:
            await self._charge_ip(request)  # may raise RateLimited instead
            exc.headers = {"WWW-Authenticate": 'Bearer realm="llama-mapper"'}
            raise

    async def _charge_ip(self, request: Request) -> None:
        limiter = self.runtime.limiter
        if limiter is None:
            return
        buckets = identity_buckets(
            key_id=None,
            tenant_id=None,
            client_ip=self._ip(request),
            settings=self.settings.rate_limit,
        )
        decision = await limiter.check(buckets, 1)
        self._count(decision)
        if not decision.allowed:
            raise RateLimited("too many requests", headers=rate_limit_headers(decision))

    def _count(self, decision: Decision) -> None:
        outcome: Literal["allowed", "limited", "degraded_open", "degraded_closed"]
        if decision.degraded:
            outcome = "degraded_open" if decision.allowed else "degraded_closed"
        else:
            outcome = "allowed" if decision.allowed else "limited"
        self.runtime.metrics.observe_ratelimit(outcome)

    async def run(
        self,
        request: Request,
        *,
        route: str,
        principal: Principal | None,
        claimed_tenants: list[str | None],
        cost: int,
        handler: Handler,
    ) -> Response:
        request_id = str(request.scope["state"]["request_id"])
        try:
            tenant = self._tenant(request, principal, claimed_tenants)
        except MapperError as exc:
            return error_response(exc, request_id)
        idempotency_key = request.headers.get("idempotency-key")
        claim = await self._early_claim(request, route, tenant, idempotency_key)
        try:
            decision = await self._limit(request, principal, tenant, cost)
        except MapperError as exc:
            if claim is not None:
                await claim.release()  # refused: the key must stay free for a retry
            return error_response(exc, request_id)
        except BaseException:
            if claim is not None:
                claim.release_soon()  # cancelled: free the key without awaiting here
            raise
        headers = raw_rate_limit_headers(decision) if decision is not None else []
        if idempotency_key is None or self.runtime.idempotency is None:
            response = await self._call(handler, tenant, request_id)
        else:
            response = await self._idempotent(
                request, route, tenant, idempotency_key, handler, claim
            )
        _add_headers(response, headers)
        return response

    async def _early_claim(
        self, request: Request, route: str, tenant: str | None, key: str | None
    ) -> _Claim | None:
        """Start claiming the Idempotency-Key while the rate limit is checked.

        With Redis behind both, the limiter's script and the claim's ``SET NX`` then share
        one round trip instead of taking one each in turn. The claim's outcome is only acted
        on once the limiter has allowed the request; a refused request frees a claim it made.
        """
        store = self.runtime.idempotency
        if (
            key is None
            or not isinstance(store, RedisIdempotencyStore)
            or self.runtime.limiter is None
            or not valid_idempotency_key(key)
        ):
            return None
        scope, body_fingerprint = await self._scope_and_fingerprint(request, route, tenant, key)
        ttl = self.settings.idempotency.ttl_seconds
        # claim() queues its SET NX now: the limiter's script joins it in one round trip.
        pending = store.claim(scope, body_fingerprint, ttl)
        return _Claim(store, scope, body_fingerprint, pending)

    async def _scope_and_fingerprint(
        self, request: Request, route: str, tenant: str | None, key: str
    ) -> tuple[str, str]:
        scope = scope_key(tenant or self.settings.default_tenant, route, key)
        return scope, fingerprint(await request.body())

    def _tenant(
        self, request: Request, principal: Principal | None, claimed: list[str | None]
    ) -> str | None:
        header = request.headers.get("x-tenant-id")
        if principal is None:  # auth off: the tenant the request names, if any
            return header or next((name for name in claimed if name is not None), None)
        named: list[str | None] = [name for name in (header, *claimed) if name is not None]
        for name in named or [None]:  # [None]: still check the scope
            authorize(principal, MAP_WRITE, name)
        return principal.tenant_id

    async def _limit(
        self, request: Request, principal: Principal | None, tenant: str | None, cost: int
    ) -> Decision | None:
        limiter = self.runtime.limiter
        if limiter is None:
            return None
        # The address matters only when nothing better identifies the caller; parsing it
        # (and X-Forwarded-For) on every request would cost more than the check itself.
        needs_ip = principal is None and tenant is None
        buckets = identity_buckets(
            key_id=principal.key_id if principal else None,
            tenant_id=tenant,
            client_ip=self._ip(request) if needs_ip else "",
            settings=self.settings.rate_limit,
        )
        decision = await limiter.check(buckets, cost)
        self._count(decision)
        if not decision.allowed:
            if decision.retry_after_seconds is None and not decision.degraded:
                raise BatchTooLarge(
                    f"this request costs {cost}, more than the rate limit's burst "
                    f"({decision.limit}); split it"
                )
            raise RateLimited("rate limit exceeded", headers=rate_limit_headers(decision))
        return decision

    async def _call(self, handler: Handler, tenant: str | None, request_id: str) -> Response:
        try:
            return await handler(tenant)
        except MapperError as exc:
            return error_response(exc, request_id)

    async def _idempotent(
        self,
        request: Request,
        route: str,
        tenant: str | None,
        key: str,
        handler: Handler,
        claim: _Claim | None = None,
    ) -> Response:
        store = self.runtime.idempotency
        assert store is not None
        request_id = str(request.scope["state"]["request_id"])
        observe = self.runtime.metrics.observe_idempotency
        if not valid_idempotency_key(key):
            return error_response(
                InvalidRequest("Idempotency-Key must be 1-255 printable ASCII characters"),
                request_id,
            )
        ttl = self.settings.idempotency.ttl_seconds
        if claim is None:
            scope, body_fingerprint = await self._scope_and_fingerprint(request, route, tenant, key)
            claim = _Claim(
                store, scope, body_fingerprint, store.begin(scope, body_fingerprint, ttl)
            )
        scope, body_fingerprint = claim.scope, claim.fingerprint
        try:
            begin = await claim.outcome()
        except IdempotencyUnavailable:
            observe("unavailable")
            if self.settings.idempotency.failure_mode == "fail_open":
                response = await self._call(handler, tenant, request_id)
                response.headers[STATUS_HEADER] = "unrecorded"
                return response
            unavailable = BackendUnavailable("the idempotency store is unavailable; retry later")
            return error_response(unavailable, request_id, {"Retry-After": "1"})
        if begin.outcome is Outcome.REPLAY and begin.response is not None:
            observe("replayed")
            stored = begin.response
            return Response(stored.body, stored.status, {**stored.headers, REPLAYED: "true"})
        if begin.outcome is Outcome.MISMATCH:
            observe("mismatch")
            reused = IdempotencyKeyReused("this Idempotency-Key was used with a different body")
            return error_response(reused, request_id)
        if begin.outcome is Outcome.IN_FLIGHT:
            observe("in_flight")
            return error_response(
                IdempotencyConflict("a request with this Idempotency-Key is in progress"),
                request_id,
                {"Retry-After": "1"},
            )
        observe("started")
        try:
            response = await self._call(handler, tenant, request_id)
        except BaseException:
            # A bug or a cancelled request: free the key now rather than after the lease.
            await _quietly(store.abandon(scope, body_fingerprint))
            raise
        try:
            if _storable(response):
                kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
                stored = StoredResponse(response.status_code, bytes(response.body), kept)
                await store.complete(scope, body_fingerprint, stored, ttl)
            else:
                await store.abandon(scope, body_fingerprint)
        except IdempotencyUnavailable:
            observe("unavailable")  # the answer stands; only the record is lost
        return response


def _add_headers(response: Response, headers: list[tuple[bytes, bytes]]) -> None:
    """The rate-limit headers onto ``response``, replacing any of the same name.

    The handlers' responses never carry them, so the usual case is a plain append; the
    general (slower) replacement is kept for any response that does.
    """
    raw = response.raw_headers
    if any(name in RATE_LIMIT_HEADER_NAMES for name, _ in raw):
        response.headers.update({name.decode(): value.decode("latin-1") for name, value in headers})
    else:
        raw.extend(headers)


class _Claim:
    """One request's claim on its Idempotency-Key: ``store.begin``, perhaps already sent.

    Awaited exactly once: by :meth:`outcome` when the request goes ahead, or by
    :meth:`release` when it does not.
    """

    def __init__(
        self, store: IdempotencyStore, scope: str, fingerprint: str, pending: Awaitable[Begin]
    ) -> None:
        self.store = store
        self.scope = scope
        self.fingerprint = fingerprint
        self._pending: Awaitable[Begin] | None = pending

    async def outcome(self) -> Begin:
        pending, self._pending = self._pending, None
        assert pending is not None, "a claim's outcome is awaited once"
        return await pending

    async def release(self) -> None:
        """Undo the claim if it was made (the request will not run); never raises."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            begin = await pending
        except Exception:  # unavailable: nothing was claimed
            return
        if begin.outcome is Outcome.STARTED:
            await _quietly(self.store.abandon(self.scope, self.fingerprint))

    def release_soon(self) -> None:
        task = asyncio.ensure_future(self.release())
        _RELEASING.add(task)  # a strong reference until it is done
        task.add_done_callback(_RELEASING.discard)


_RELEASING: set[asyncio.Future[None]] = set()


_KEPT_HEADERS = {"content-type", "deprecation", "sunset", "link", "location", "x-request-id"}


def _storable(response: Response) -> bool:
    """Final answers are recorded for replay, except those marked ``Cache-Control:
    no-store`` (an answer that quotes content, like orch's redacted text, must not be
    kept in the idempotency store)."""
    if response.status_code >= 500 or response.status_code in _NOT_STORED:
        return False
    return "no-store" not in response.headers.get("cache-control", "").lower()


async def _quietly(awaitable: Awaitable[None]) -> None:
    with contextlib.suppress(IdempotencyUnavailable):  # the lease expires on its own
        await awaitable
