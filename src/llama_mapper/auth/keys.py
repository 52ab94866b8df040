"""The API key format, hashing and scope names: pure functions, no I/O.

A key reads ``lmk_<key_id>_<secret>``. The ``key_id`` is public (it is listed, logged and
used as the database primary key), so a lookup never needs the secret; the secret is 32
random bytes, stored only as an HMAC-SHA256 under a server-side pepper, so a stolen
database alone cannot be turned into working keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets as _random
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llama_mapper.secrets import Secret

PREFIX = "lmk_"
KEY_ID_LENGTH = 12
SECRET_BYTES = 32
#: 32 bytes in unpadded URL-safe base64.
SECRET_LENGTH = 43
KEY_LENGTH = len(PREFIX) + KEY_ID_LENGTH + 1 + SECRET_LENGTH

MAP_WRITE = "map:write"
MAP_READ = "map:read"
REPORTS_READ = "reports:read"
#: Implies every other scope (see :meth:`llama_mapper.auth.model.Principal.has`).
ADMIN = "admin"
ALL_SCOPES: frozenset[str] = frozenset({MAP_WRITE, MAP_READ, REPORTS_READ, ADMIN})

# Key ids are generated as lowercase base32; lowercase hex ids are accepted too.
_KEY_ID = re.compile(r"[a-z0-9]{12}")
_KEY = re.compile(r"lmk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})")
_DURATION = re.compile(r"(\d{1,9})([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
#: Longest accepted duration: beyond this a "limit" is no limit, and timedelta overflows.
MAX_DURATION = timedelta(days=36_500)


def generate_key() -> tuple[str, str]:
    """A fresh ``(key_id, full_key)``; the full key is shown once and never stored."""
    key_id = base64.b32encode(_random.token_bytes(8)).decode("ascii").lower()[:KEY_ID_LENGTH]
    secret = base64.urlsafe_b64encode(_random.token_bytes(SECRET_BYTES)).decode("ascii")
    return key_id, f"{PREFIX}{key_id}_{secret.rstrip('=')}"


def parse_key(text: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else ``None``.

    The check is purely syntactic (fixed length, fixed alphabet), so its time depends only
    on the input's shape, never on any stored secret; long inputs are refused before the
    regular expression runs.
    """
    if len(text) != KEY_LENGTH:
        return None
    match = _KEY.fullmatch(text)
    if match is None:
        return None
    return match.group(1), match.group(2)


def valid_key_id(text: str) -> bool:
    """Whether ``text`` could be a key id (for CLI arguments and admin lookups)."""
    return _KEY_ID.fullmatch(text) is not None


def hash_secret(secret: str, pepper: Secret) -> str:
    """HMAC-SHA256 of the secret under the pepper, as hex: what the database stores."""
    key = pepper.value.encode("utf-8")
    return hmac.new(key, secret.encode("utf-8"), hashlib.sha256).hexdigest()


def parse_duration(text: str) -> timedelta:
    """``"90d"``, ``"12h"``, ``"30m"`` or ``"3600s"`` as a ``timedelta``.

    Raises ``ValueError`` for anything else, including durations over 100 years.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"invalid duration {text!r}: use a whole number and a unit, e.g. 90d, 12h, 30m, 3600s"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount > MAX_DURATION / timedelta(**{_UNITS[unit]: 1}):
        raise ValueError(f"duration {text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(**{_UNITS[unit]: amount})
