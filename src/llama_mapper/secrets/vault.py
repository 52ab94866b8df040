"""Secrets from HashiCorp Vault or OpenBao (same HTTP API), through hvac.

* Secret ``name`` is the field ``value`` of the KV v2 secret ``{vault_kv_path}/{name}`` in
  the mount ``vault_kv_mount``; its version is the KV v2 metadata version ("1", "2" …).
  Writing a new version rotates it: processes see it once their cache expires.
* Keyed hashes are computed by the transit engine (mount ``vault_transit_mount``,
  ``hmac`` with sha2-256) so the key never leaves Vault; the key version comes from the
  ``vault:vN:`` prefix. After ``rotate_key`` old digests still verify with their version,
  until ``min_decryption_version`` retires it. The transit key must already exist: a
  silently created key would make every stored digest unverifiable after a mount change.
* Authentication: the token in env var ``vault_token_env``, else an AppRole login with the
  role_id and secret_id in ``vault_role_id_env`` and ``vault_secret_id_env``. A request
  refused with 401/403 logs in again once (an expired AppRole token, a replaced token).
* Every hvac/requests failure becomes :class:`SecretError` with a fixed reason: Vault's own
  error text is never copied, and the original exception is not chained, so neither a
  token nor a value can reach a log through this module.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from llama_mapper.config.settings import SecretsSettings
from llama_mapper.secrets._base import Clock, Secret, SecretError, TTLCache, check_name

logger = logging.getLogger("llama_mapper.secrets")

T = TypeVar("T")
BACKEND = "vault"
APPROLE_MOUNT = "approle"
HASH_ALGORITHM = "sha2-256"
DEFAULT_TIMEOUT_S = 2.0
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_VERSION = re.compile(r"[1-9][0-9]{0,9}")
_TRANSIT_HMAC = re.compile(r"vault:v([1-9][0-9]*):([A-Za-z0-9+/=]+)")
_TRANSIT_CIPHERTEXT = re.compile(r"vault:v[1-9][0-9]*:[A-Za-z0-9+/=]+")


class VaultSecretProvider:
    """Reads KV v2 secrets and computes transit HMACs; thread-safe.

    Each thread gets its own hvac client (a ``requests.Session`` is not documented as
    thread-safe); the token is shared and replaced under a lock.
    """

    backend = BACKEND

    def __init__(
        self,
        settings: SecretsSettings,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Clock = time.monotonic,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        """No network here: the first use logs in, so start-up does not depend on Vault.

        The address is ``secrets.vault_url``, else ``$VAULT_ADDR``/``$BAO_ADDR``; TLS
        trust follows hvac (``$VAULT_CACERT``). ``environ``/``clock`` exist for tests.
        """
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        url = settings.vault_url or self._environ.get("VAULT_ADDR") or self._environ.get("BAO_ADDR")
        if not url:
            raise SecretError("", BACKEND, "no address: set secrets.vault_url or $VAULT_ADDR")
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._settings = settings
        self._latest: TTLCache[str, Secret] = TTLCache(settings.cache_seconds, clock)
        self._versions: TTLCache[tuple[str, str], Secret] = TTLCache(settings.cache_seconds, clock)
        self._local = threading.local()
        self._auth_lock = threading.Lock()
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"VaultSecretProvider(url={self._url!r})"

    # --- the SecretProvider API ----------------------------------------------------------

    def get(self, name: str, version: str | None = None) -> Secret:
        check_name(name, BACKEND)
        if version is None:
            cached = self._latest.get(name)
        else:
            if not isinstance(version, str) or not _VERSION.fullmatch(version):
                raise SecretError(name, BACKEND, "a KV version is a positive integer")
            cached = self._versions.get((name, version))
        if cached is not None:
            return cached
        path = f"{self._settings.vault_kv_path}/{name}"
        mount = self._settings.vault_kv_mount
        response = self._call(
            name,
            lambda client: client.secrets.kv.v2.read_secret_version(
                path=path,
                version=int(version) if version is not None else None,
                mount_point=mount,
                raise_on_deleted_version=True,
            ),
            not_found=f"no such KV v2 secret {mount}/{path}"
            + (f" version {version}" if version else "")
            + " (or it was deleted)",
        )
        secret = _parse_kv(name, response)
        if version is None:
            self._latest.put(name, secret)
        self._versions.put((name, secret.version), secret)
        return secret

    def keyed_hash(self, key_name: str, data: bytes) -> tuple[str, str]:
        check_name(key_name, BACKEND)
        mount = self._settings.vault_transit_mount
        response = self._call(
            key_name,
            lambda client: client.secrets.transit.generate_hmac(
                name=key_name,
                hash_input=_b64(data),
                algorithm=HASH_ALGORITHM,
                mount_point=mount,
            ),
            not_found=f"no transit key {mount}/keys/{key_name} (create it first)",
        )
        try:
            match = _TRANSIT_HMAC.fullmatch(response["data"]["hmac"])
            if match is None:
                raise ValueError
            digest = base64.b64decode(match.group(2), validate=True).hex()
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise SecretError(key_name, BACKEND, "unexpected transit hmac response") from None
        return digest, match.group(1)

    def verify_keyed_hash(self, key_name: str, data: bytes, digest: str, version: str) -> bool:
        """Transit ``verify`` with ``vault:v{version}:…``, so key-version policy applies.

        False for a wrong digest, a malformed one, or a version the key no longer accepts
        (too new, or below ``min_decryption_version``); SecretError when Vault cannot answer
        or the key does not exist, because "could not check" is not "does not match".
        """
        check_name(key_name, BACKEND)
        if not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
            return False
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            return False
        signed = f"vault:v{version}:{_b64(bytes.fromhex(digest))}"
        mount = self._settings.vault_transit_mount
        try:
            response = self._call(
                key_name,
                lambda client: client.secrets.transit.verify_signed_data(
                    name=key_name,
                    hash_input=_b64(data),
                    hmac=signed,
                    hash_algorithm=HASH_ALGORITHM,
                    mount_point=mount,
                ),
                not_found=f"no transit key {mount}/keys/{key_name}",
                refused_is_false=True,
            )
        except _Refused:
            return False
        try:
            return response["data"]["valid"] is True
        except (KeyError, TypeError):
            raise SecretError(key_name, BACKEND, "unexpected transit verify response") from None

    # --- transit encryption (wrapping data keys, see llama_mapper.crypto) ---------------

    def transit_encrypt(self, key_name: str, plaintext: bytes) -> str:
        """Transit ``encrypt`` under the key's newest version: ``vault:vN:...``."""
        check_name(key_name, BACKEND)
        mount = self._settings.vault_transit_mount
        response = self._call(
            key_name,
            lambda client: client.secrets.transit.encrypt_data(
                name=key_name, plaintext=_b64(plaintext), mount_point=mount
            ),
            not_found=f"no transit key {mount}/keys/{key_name} (create it first)",
        )
        return _transit_ciphertext(key_name, response)

    def transit_decrypt(self, key_name: str, ciphertext: str) -> bytes:
        """Transit ``decrypt``; :class:`SecretError` (never Vault's text) when refused."""
        check_name(key_name, BACKEND)
        mount = self._settings.vault_transit_mount
        response = self._call(
            key_name,
            lambda client: client.secrets.transit.decrypt_data(
                name=key_name, ciphertext=ciphertext, mount_point=mount
            ),
            not_found=f"no transit key {mount}/keys/{key_name}",
        )
        try:
            return base64.b64decode(response["data"]["plaintext"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise SecretError(key_name, BACKEND, "unexpected transit decrypt response") from None

    def transit_rewrap(self, key_name: str, ciphertext: str) -> str:
        """Transit ``rewrap``: the same plaintext under the newest key version, never
        leaving Vault."""
        check_name(key_name, BACKEND)
        mount = self._settings.vault_transit_mount
        response = self._call(
            key_name,
            lambda client: client.secrets.transit.rewrap_data(
                name=key_name, ciphertext=ciphertext, mount_point=mount
            ),
            not_found=f"no transit key {mount}/keys/{key_name}",
        )
        return _transit_ciphertext(key_name, response)

    def health(self) -> str:
        try:
            status = self._client().sys.read_health_status(method="GET")
            if not isinstance(status, dict):  # non-200: hvac hands back the raw response
                try:
                    status = status.json()
                except ValueError:
                    return f"Vault health answered HTTP {status.status_code}"
            if not status.get("initialized", False):
                return "Vault is not initialized"
            if status.get("sealed", True):
                return "Vault is sealed"
            self._call("", lambda client: client.auth.token.lookup_self(), not_found="no token")
            return "ok"
        except SecretError as exc:
            return exc.reason
        except requests.RequestException as exc:
            return _unreachable(self._url, exc)
        except Exception as exc:  # health must never raise
            return f"Vault health check failed ({type(exc).__name__})"

    # --- plumbing ------------------------------------------------------------------------

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            # token="" keeps hvac from reading $VAULT_TOKEN or ~/.vault-token by itself.
            client = hvac.Client(url=self._url, token="", timeout=self._timeout)
            self._local.client = client
        return client

    def _call(
        self,
        name: str,
        operation: Callable[[Any], T],
        *,
        not_found: str,
        refused_is_false: bool = False,
    ) -> T:
        """Run ``operation`` with a valid token; re-login once on 401/403; map every error."""
        client = self._client()
        token = self._current_token(name)
        for attempt in (1, 2):
            client.token = token
            try:
                return operation(client)
            except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
                if attempt == 2:
                    raise SecretError(name, BACKEND, "permission denied") from None
                token = self._relogin(name, stale=token)
            except hvac.exceptions.InvalidPath:
                raise SecretError(name, BACKEND, not_found) from None
            except hvac.exceptions.InvalidRequest as exc:
                text = " ".join(str(error) for error in (exc.errors or []))
                if "not found" in text:
                    raise SecretError(name, BACKEND, not_found) from None
                if refused_is_false:
                    raise _Refused from None
                raise SecretError(name, BACKEND, "Vault refused the request (400)") from None
            except hvac.exceptions.VaultDown:
                raise SecretError(name, BACKEND, "Vault is sealed or down (503)") from None
            except hvac.exceptions.VaultError as exc:
                raise SecretError(name, BACKEND, f"Vault error ({type(exc).__name__})") from None
            except requests.RequestException as exc:
                raise SecretError(name, BACKEND, _unreachable(self._url, exc)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _current_token(self, name: str) -> str:
        with self._auth_lock:
            if self._token is None:
                self._token = self._login(name)
            return self._token

    def _relogin(self, name: str, stale: str) -> str:
        with self._auth_lock:
            if self._token == stale:  # else another thread already logged in again
                self._token = self._login(name)
            return self._token or ""

    def _login(self, name: str) -> str:
        """A token from the environment, else from an AppRole login; read afresh each time.

        Reading the environment again on every login is what lets a replaced token (or
        secret_id) take effect without a restart.
        """
        settings = self._settings
        token = self._environ.get(settings.vault_token_env)
        if token:
            return token
        role_id = self._environ.get(settings.vault_role_id_env)
        secret_id = self._environ.get(settings.vault_secret_id_env)
        if not role_id or not secret_id:
            raise SecretError(
                name,
                BACKEND,
                f"no credentials: set ${settings.vault_token_env}, or "
                f"${settings.vault_role_id_env} and ${settings.vault_secret_id_env}",
            )
        login_client = hvac.Client(url=self._url, token="", timeout=self._timeout)
        try:
            response = login_client.auth.approle.login(
                role_id=role_id, secret_id=secret_id, use_token=False, mount_point=APPROLE_MOUNT
            )
            client_token = response["auth"]["client_token"]
        except hvac.exceptions.VaultError as exc:
            raise SecretError(
                name, BACKEND, f"AppRole login failed ({type(exc).__name__})"
            ) from None
        except requests.RequestException as exc:
            raise SecretError(name, BACKEND, _unreachable(self._url, exc)) from None
        except (KeyError, TypeError):
            raise SecretError(name, BACKEND, "unexpected AppRole login response") from None
        if not isinstance(client_token, str) or not client_token:
            raise SecretError(name, BACKEND, "unexpected AppRole login response")
        logger.info("logged in to Vault at %s with AppRole", self._url)
        return client_token


class _Refused(Exception):
    """Vault rejected a verification as invalid input (e.g. a retired key version)."""


def _parse_kv(name: str, response: Any) -> Secret:
    try:
        value = response["data"]["data"]["value"]
        version = str(int(response["data"]["metadata"]["version"]))
    except (KeyError, TypeError, ValueError):
        raise SecretError(name, BACKEND, "KV v2 secret has no field 'value'") from None
    if not isinstance(value, str) or not value:
        raise SecretError(name, BACKEND, "field 'value' is not a non-empty string")
    return Secret(name=name, value=value, version=version)


def _transit_ciphertext(key_name: str, response: Any) -> str:
    try:
        ciphertext = response["data"]["ciphertext"]
    except (KeyError, TypeError):
        raise SecretError(key_name, BACKEND, "unexpected transit encrypt response") from None
    if not isinstance(ciphertext, str) or not _TRANSIT_CIPHERTEXT.fullmatch(ciphertext):
        raise SecretError(key_name, BACKEND, "unexpected transit encrypt response")
    return ciphertext


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unreachable(url: str, exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"Vault at {url} did not answer in time"
    return f"Vault at {url} is unreachable ({type(exc).__name__})"
