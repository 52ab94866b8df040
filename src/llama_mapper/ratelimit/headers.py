"""Response headers describing a rate-limit decision (IETF ``RateLimit`` fields draft).

Seconds are rounded *up*: a client told to wait 0 s while a bucket still needs 0.3 s would
retry too early and be refused again.
"""

from __future__ import annotations

import math

from llama_mapper.ratelimit.gcra import Decision

# Float noise (1.0000000001) must not round a whole second up to the next one.
_ROUNDING_SLACK = 1e-6


def _ceil_seconds(value: float) -> int:
    return max(math.ceil(value - _ROUNDING_SLACK), 0)


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """``RateLimit-*`` headers, plus ``Retry-After`` (at least 1 s) when the request is denied."""
    return {
        _TITLES[name]: value.decode("latin-1") for name, value in raw_rate_limit_headers(decision)
    }


def raw_rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """The same headers as ASGI wants them (lower-case names, bytes), for every answer."""
    headers = [
        (b"ratelimit-limit", b"%d" % decision.limit),
        (b"ratelimit-remaining", b"%d" % max(decision.remaining, 0)),
        (b"ratelimit-reset", b"%d" % _ceil_seconds(decision.reset_seconds)),
        (b"ratelimit-policy", decision.policy.encode("latin-1")),
    ]
    if not decision.allowed and decision.retry_after_seconds is not None:
        retry = max(_ceil_seconds(decision.retry_after_seconds), 1)
        headers.append((b"retry-after", b"%d" % retry))
    return headers


_TITLES = {
    b"ratelimit-limit": "RateLimit-Limit",
    b"ratelimit-remaining": "RateLimit-Remaining",
    b"ratelimit-reset": "RateLimit-Reset",
    b"ratelimit-policy": "RateLimit-Policy",
    b"retry-after": "Retry-After",
}
#: Every name :func:`raw_rate_limit_headers` may send.
RATE_LIMIT_HEADER_NAMES = frozenset(_TITLES)
