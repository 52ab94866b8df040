"""API-key authentication: key format, storage, verification and authorization.

Keys read ``lmk_<key_id>_<secret>``; only an HMAC of the secret under a rotating pepper is
stored. See :class:`~llama_mapper.auth.service.AuthService` for the lifecycle.
"""

from __future__ import annotations

from llama_mapper.auth.errors import (
    AuthenticationError,
    InsufficientScope,
    KeyNotFound,
    PermissionDenied,
    TenantMismatch,
)
from llama_mapper.auth.keys import (
    ADMIN,
    ALL_SCOPES,
    MAP_READ,
    MAP_WRITE,
    REPORTS_READ,
    generate_key,
    hash_secret,
    parse_duration,
    parse_key,
)
from llama_mapper.auth.model import ApiKeyRecord, Principal

__all__ = [
    "ADMIN",
    "ALL_SCOPES",
    "MAP_READ",
    "MAP_WRITE",
    "REPORTS_READ",
    "ApiKeyRecord",
    "AuthenticationError",
    "InsufficientScope",
    "KeyNotFound",
    "PermissionDenied",
    "Principal",
    "TenantMismatch",
    "generate_key",
    "hash_secret",
    "parse_duration",
    "parse_key",
]
