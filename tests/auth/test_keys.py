"""The pure parts: key format, hashing, scopes, durations and the record/principal types."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from llama_mapper.auth import errors as auth_errors
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
from llama_mapper.errors import MapperError, TenantMismatch
from llama_mapper.secrets import Secret

KEY = re.compile(r"lmk_[a-z2-7]{12}_[A-Za-z0-9_-]{43}")


def test_generated_keys_have_the_documented_format_and_parse_back() -> None:
    seen = set()
    for _ in range(200):
        key_id, full = generate_key()
        assert KEY.fullmatch(full), full
        assert parse_key(full) == (key_id, full[17:])
        seen.add(full)
    assert len(seen) == 200


@pytest.mark.parametrize(
    "text",
    [
        "",
        "lmk_",
        "garbage",
        "lmk_abcdefghijkl_" + "A" * 42,  # secret too short
        "lmk_abcdefghijkl_" + "A" * 44,  # too long
        "lmk_ABCDEFGHIJKL_" + "A" * 43,  # upper-case key id
        "lmk_abcdefghijk_" + "A" * 44,  # key id too short
        "xyz_abcdefghijkl_" + "A" * 43,  # wrong prefix
        "lmk_abcdefghijkl-" + "A" * 43,  # wrong separator
        "lmk_abcdefghijkl_" + "A" * 42 + "=",  # padding
        "lmk_abcdefghijkl_" + "A" * 42 + "\n",
        "lmk_abcdefghijkl_" + "A" * 42 + "é",
        "lmk_abcdefghijkl_" + "A" * 42 + "+",
        "Bearer lmk_abcdefghijkl_" + "A" * 43,
        "x" * 100_000,
    ],
)
def test_parse_key_rejects_anything_but_the_exact_format(text: str) -> None:
    assert parse_key(text) is None


def test_parse_key_accepts_hex_key_ids() -> None:
    assert parse_key("lmk_0123456789ab_" + "a" * 43) == ("0123456789ab", "a" * 43)


def test_hash_secret_is_hmac_sha256_under_the_pepper() -> None:
    one = Secret("api_key_pepper", "pepper-one", "v1")
    two = Secret("api_key_pepper", "pepper-two", "v2")
    digest = hash_secret("s" * 43, one)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hash_secret("s" * 43, one)
    assert digest != hash_secret("s" * 43, two)
    assert digest != hash_secret("t" * 43, one)
    # Known answer, from: python -c "import hmac;print(hmac.new(b'k', b'm', 'sha256').hexdigest())"
    assert (
        hash_secret("m", Secret("p", "k", "1"))
        == "b60090e3052297aeb5a080889ce2fc4bca957e756faeb4df7d31800ca1e771ec"
    )


def test_scopes() -> None:
    assert (MAP_WRITE, MAP_READ, ADMIN, REPORTS_READ) == (
        "map:write",
        "map:read",
        "admin",
        "reports:read",
    )
    assert frozenset({MAP_WRITE, MAP_READ, ADMIN, REPORTS_READ}) == ALL_SCOPES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("3600s", timedelta(seconds=3600)),
        (" 1d ", timedelta(days=1)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "1.5h", "-1d", "1w", "1 d", "1D", "99999999999d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_principal_scopes_and_admin() -> None:
    writer = Principal("k1", "acme", frozenset({MAP_WRITE}))
    assert writer.has(MAP_WRITE)
    assert not writer.has(MAP_READ)
    admin = Principal("k2", "acme", frozenset({ADMIN}))
    assert all(admin.has(scope) for scope in ALL_SCOPES)


def test_record_status_and_repr_hide_the_hash() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    record = ApiKeyRecord(
        key_id="abcdefghijkl",
        tenant_id="acme",
        scopes=frozenset({MAP_WRITE}),
        key_hash="f" * 64,
        pepper_version="v1",
        created_at=now,
    )
    assert "f" * 64 not in repr(record)
    assert "key_hash" not in record.public_dict(now)
    assert record.status(now) == "active"
    assert record.is_active(now)
    later = ApiKeyRecord(**{**_fields(record), "expires_at": now + timedelta(days=3)})
    assert later.status(now) == "expiring"
    assert later.status(now + timedelta(days=3)) == "expired"
    assert not later.is_active(now + timedelta(days=3))
    revoked = ApiKeyRecord(**{**_fields(record), "revoked_at": now})
    assert revoked.status(now) == "revoked"
    assert not revoked.is_active(now)


def _fields(record: ApiKeyRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]


def test_errors_render_as_standard_mapper_errors() -> None:
    error = auth_errors.AuthenticationError()
    assert isinstance(error, MapperError)
    assert (error.status, error.error_code, error.retryable) == (401, "INVALID_API_KEY", False)
    denied = auth_errors.PermissionDenied("no")
    assert (denied.status, denied.error_code) == (403, "INSUFFICIENT_SCOPE")
    scope = auth_errors.InsufficientScope("no")
    assert isinstance(scope, auth_errors.PermissionDenied)
    assert (scope.status, scope.error_code) == (403, "INSUFFICIENT_SCOPE")
    mismatch = auth_errors.TenantMismatch("no")
    assert isinstance(mismatch, auth_errors.PermissionDenied)
    assert isinstance(mismatch, TenantMismatch)  # the API's own class catches it too
    assert (mismatch.status, mismatch.error_code) == (403, "TENANT_MISMATCH")
