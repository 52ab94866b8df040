"""Rate limiting: GCRA buckets per API key, tenant or client address, in memory or Redis."""

from llama_mapper.ratelimit.backends import (
    Bucket,
    MemoryBackend,
    RateLimitBackend,
    RateLimitUnavailable,
    RedisBackend,
    TimedRateLimitBackend,
)
from llama_mapper.ratelimit.gcra import Decision, Quota
from llama_mapper.ratelimit.headers import (
    RATE_LIMIT_HEADER_NAMES,
    rate_limit_headers,
    raw_rate_limit_headers,
)
from llama_mapper.ratelimit.identity import client_ip, identity_buckets
from llama_mapper.ratelimit.limiter import FailureMode, RateLimiter

__all__ = [
    "RATE_LIMIT_HEADER_NAMES",
    "Bucket",
    "Decision",
    "FailureMode",
    "MemoryBackend",
    "Quota",
    "RateLimitBackend",
    "RateLimitUnavailable",
    "RateLimiter",
    "RedisBackend",
    "TimedRateLimitBackend",
    "client_ip",
    "identity_buckets",
    "rate_limit_headers",
    "raw_rate_limit_headers",
]
