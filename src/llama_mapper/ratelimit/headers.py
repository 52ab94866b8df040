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
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(max(decision.remaining, 0)),
        "RateLimit-Reset": str(_ceil_seconds(decision.reset_seconds)),
        "RateLimit-Policy": decision.policy,
    }
    if not decision.allowed and decision.retry_after_seconds is not None:
        headers["Retry-After"] = str(max(_ceil_seconds(decision.retry_after_seconds), 1))
    return headers
