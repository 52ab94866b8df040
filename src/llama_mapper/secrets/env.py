"""Secrets from environment variables and files: the embedded default, no server needed.

Where a secret comes from, first match wins:

1. env var ``LLAMA_MAPPER_SECRET_<NAME>`` (name upper-cased, every character other than a
   letter or digit turned into ``_``: ``api_key_pepper`` → ``…SECRET_API_KEY_PEPPER``);
2. file ``<directory>/<name>`` when ``secrets.directory`` is set (one trailing newline
   stripped; this is how Kubernetes and Docker mount secrets);
3. file ``<fallback_dir>/<name>``, and, only when getting the latest version of a secret
   that exists nowhere, a random 32-byte secret generated once into that file (mode 0600),
   so that a fresh embedded install has a stable pepper without any setup.

Versions. The value found is the current version; its id is the first 12 hex characters
of its SHA-256, so a stored keyed hash remembers which pepper made it, every process and
host derives the same id, and a random pepper cannot be recovered from it (a weak,
human-chosen value could be confirmed by guessing, so keep ids of passwords private).

To rotate, put the new value in place and move the old one to
``LLAMA_MAPPER_SECRET_<NAME>_PREVIOUS`` (comma-separated, so values must not contain
commas) or to the file ``<name>.previous`` next to the secret file (one value a line):
``get(name, version)`` still finds it, so old hashes stay verifiable. Changes are picked up
once the cache (``secrets.cache_seconds``) expires: no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from llama_mapper.config.settings import SecretsSettings
from llama_mapper.secrets._base import Clock, Secret, SecretError, TTLCache, check_name

logger = logging.getLogger("llama_mapper.secrets")

ENV_PREFIX = "LLAMA_MAPPER_SECRET_"
PREVIOUS_SUFFIX = ".previous"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
BACKEND = "env"


def env_var_name(name: str) -> str:
    """The environment variable that holds secret ``name``."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def version_of(value: str) -> str:
    """A value's version id: stable across processes and hosts, and short enough to store."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class _Versions:
    current: Secret
    previous: tuple[Secret, ...]

    def find(self, version: str) -> Secret | None:
        if version == self.current.version:
            return self.current
        for secret in self.previous:
            if version == secret.version:
                return secret
        return None


class EnvSecretProvider:
    """Reads secrets from the environment and from files; thread-safe."""

    backend = BACKEND

    def __init__(
        self,
        settings: SecretsSettings | None = None,
        *,
        fallback_dir: Path | None = None,
        generated: frozenset[str] | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """``fallback_dir`` (normally ``<state_dir>/secrets``) enables generated secrets.

        ``environ`` and ``clock`` exist for tests; by default the live ``os.environ`` is
        read on every cache miss, so a changed variable is seen without a restart.
        """
        settings = settings if settings is not None else SecretsSettings()
        self._directory = settings.directory
        self._fallback_dir = fallback_dir
        #: Names that may be generated (keys and peppers); None: any. A missing database
        #: password must be reported, not replaced by a random one that cannot work.
        self._generated = generated
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._cache: TTLCache[str, _Versions] = TTLCache(settings.cache_seconds, clock)
        self._generate_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EnvSecretProvider(directory={self._directory}, fallback_dir={self._fallback_dir})"

    # --- the SecretProvider API ----------------------------------------------------------

    def get(self, name: str, version: str | None = None) -> Secret:
        secret = self._find(name, version)
        if secret is None:
            shown = str(version)[:40]
            raise SecretError(
                name, BACKEND, f"version {shown!r} is neither the current nor a previous value"
            )
        return secret

    def keyed_hash(self, key_name: str, data: bytes) -> tuple[str, str]:
        secret = self.get(key_name)
        return _hmac_hex(secret.value, data), secret.version

    def verify_keyed_hash(self, key_name: str, data: bytes, digest: str, version: str) -> bool:
        """False for a wrong digest or a retired/unknown version; SecretError if no key at all."""
        if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
            return False
        secret = self._find(key_name, version)
        if secret is None:
            return False
        return hmac.compare_digest(_hmac_hex(secret.value, data), digest.lower())

    def health(self) -> str:
        try:
            if self._directory is not None:
                if not self._directory.is_dir():
                    return f"secrets directory {self._directory} does not exist"
                if not os.access(self._directory, os.R_OK | os.X_OK):
                    return f"secrets directory {self._directory} is not readable"
            return "ok"
        except Exception as exc:  # health must never raise
            return f"secrets check failed ({type(exc).__name__})"

    # --- lookup --------------------------------------------------------------------------

    def _find(self, name: str, version: str | None) -> Secret | None:
        """The wanted version, or None when the secret exists but that version does not."""
        check_name(name, BACKEND)
        if name.endswith(PREVIOUS_SUFFIX):
            raise SecretError(name, BACKEND, f"names ending in {PREVIOUS_SUFFIX!r} are reserved")
        versions = self._cache.get(name)
        cached = versions is not None
        if versions is None:
            versions = self._load(name, generate=version is None)
        if version is None:
            return versions.current
        found = versions.find(version)
        if found is None and cached:
            # Another process may already hash with a value this one has not re-read yet.
            found = self._load(name, generate=False).find(version)
        return found

    def _load(self, name: str, *, generate: bool) -> _Versions:
        value = self._current_value(name, generate=generate)
        current = Secret(name=name, value=value, version=version_of(value))
        previous: list[Secret] = []
        seen = {current.version}
        for old in self._previous_values(name):
            secret = Secret(name=name, value=old, version=version_of(old))
            if secret.version not in seen:
                seen.add(secret.version)
                previous.append(secret)
        versions = _Versions(current=current, previous=tuple(previous))
        self._cache.put(name, versions)
        return versions

    def _folders(self) -> Iterable[Path]:
        if self._directory is not None:
            yield self._directory
        if self._fallback_dir is not None:
            yield self._fallback_dir

    def _current_value(self, name: str, *, generate: bool) -> str:
        variable = env_var_name(name)
        value = self._environ.get(variable)
        if value:
            return value
        for folder in self._folders():
            value = _read_file(name, folder / name)
            if value is not None:
                if not value:
                    raise SecretError(name, BACKEND, f"file {folder / name} is empty")
                return value
        may_generate = self._generated is None or name in self._generated
        if generate and may_generate and self._fallback_dir is not None:
            return self._generate(name, self._fallback_dir)
        where = f"set ${variable}"
        if self._directory is not None:
            where += f" or create {self._directory / name}"
        raise SecretError(name, BACKEND, f"not set ({where})")

    def _previous_values(self, name: str) -> list[str]:
        values = [
            part.strip()
            for part in self._environ.get(env_var_name(name) + "_PREVIOUS", "").split(",")
        ]
        for folder in self._folders():
            text = _read_file(name, folder / (name + PREVIOUS_SUFFIX))
            if text is not None:
                values.extend(line.rstrip("\r") for line in text.split("\n"))
        return [value for value in values if value]

    def _generate(self, name: str, folder: Path) -> str:
        """Create ``folder/name`` once, atomically, so concurrent workers agree on one value.

        The value is written to a private temp file and hard-linked into place: the link
        fails if another thread or process won the race, and a reader never sees a
        half-written file.
        """
        path = folder / name
        with self._generate_lock:
            existing = _read_file(name, path)
            if existing:
                return existing
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            except OSError as exc:
                raise SecretError(
                    name, BACKEND, f"cannot create {path} ({type(exc).__name__})"
                ) from None
            try:
                os.fchmod(fd, 0o600)
                value = secrets.token_hex(32)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(value + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    winner = _read_file(name, path)
                    if not winner:
                        raise SecretError(name, BACKEND, f"file {path} is empty") from None
                    return winner
                except OSError as exc:
                    raise SecretError(
                        name, BACKEND, f"cannot create {path} ({type(exc).__name__})"
                    ) from None
            finally:
                Path(tmp).unlink(missing_ok=True)
        logger.warning(
            "generated secret %r into %s: set it explicitly for a shared or production setup",
            name,
            path,
        )
        return value


def _read_file(name: str, path: Path) -> str | None:
    """The file's text without its trailing newline; None when there is no such file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretError(name, BACKEND, f"cannot read {path} ({type(exc).__name__})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # The exception's text quotes the offending bytes: never chain it.
        raise SecretError(name, BACKEND, f"{path} is not UTF-8 text") from None
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text


def _hmac_hex(key: str, data: bytes) -> str:
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()
