"""Naming and fingerprinting of idempotent requests.

Only digests are kept: the client's ``Idempotency-Key`` is hashed before it becomes part of a
storage key (an arbitrary header value never lands in Redis key names), and a request is
remembered by the SHA-256 of its canonical JSON, never by its content.
"""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import quote

import orjson

MAX_KEY_LENGTH = 255
_LONG_NUMBER = re.compile(rb"\d{16}")


def valid_idempotency_key(value: str) -> bool:
    """1 to 255 printable ASCII characters (space through ``~``), as header values allow."""
    # For ASCII, isprintable() is exactly space through "~" (no DEL, no controls).
    return 1 <= len(value) <= MAX_KEY_LENGTH and value.isascii() and value.isprintable()


def scope_key(tenant_id: str, route: str, idempotency_key: str) -> str:
    """The storage name of one tenant's key on one route.

    Tenant and route are percent-encoded so ``:`` cannot make two scopes collide, and stay
    readable so an operator can find (or purge) a tenant's records; the key is hashed.
    """
    digest = hashlib.sha256(idempotency_key.encode("utf-8", "surrogatepass")).hexdigest()
    return _scope_prefix(tenant_id, route) + digest


@functools.lru_cache(maxsize=4096)
def _scope_prefix(tenant_id: str, route: str) -> str:
    # Few tenants and routes, many keys: encode each pair once.
    return f"{quote(tenant_id, safe='')}:{quote(route, safe='')}:"


def fingerprint(body: bytes) -> str:
    """SHA-256 (hex) of the body's canonical JSON (keys sorted, no whitespace).

    Canonical so a retry that merely reorders keys or reformats is still the same request;
    a body that is not JSON (or that orjson cannot represent) is hashed as raw bytes. So is
    one with a run of 16 or more digits: orjson reads big integers as doubles, and two
    requests differing only past a double's precision must not share a fingerprint (the
    wrong response would be replayed); byte-exact hashing errs towards ``MISMATCH`` instead.
    """
    if _LONG_NUMBER.search(body):
        return hashlib.sha256(body).hexdigest()
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError, ValueError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()
