"""The Vault provider against a real OpenBao dev server: KV v2, transit, AppRole, failures."""

from __future__ import annotations

import socket
import threading
import traceback
from collections.abc import Iterator

import hvac
import hvac.exceptions
import pytest

from llama_mapper.config.settings import SecretsSettings
from llama_mapper.secrets import (
    SecretError,
    SecretProvider,
    VaultSecretProvider,
    provider_from_settings,
)

BAO_ADDR = "http://127.0.0.1:8200"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def kv_path(openbao: hvac.Client, unique: str) -> Iterator[str]:
    path = f"llama-mapper-tests/{unique}"
    yield path
    try:
        keys = openbao.secrets.kv.v2.list_secrets(path=path, mount_point="secret")["data"]["keys"]
    except hvac.exceptions.InvalidPath:  # nothing was written
        keys = []
    for key in keys:
        openbao.secrets.kv.v2.delete_metadata_and_all_versions(
            path=f"{path}/{key}", mount_point="secret"
        )


def settings_for(kv_path: str, url: str = BAO_ADDR, cache_seconds: float = 30) -> SecretsSettings:
    return SecretsSettings(
        backend="vault", vault_url=url, vault_kv_path=kv_path, cache_seconds=cache_seconds
    )


def make(
    kv_path: str,
    environ: dict[str, str] | None = None,
    clock: FakeClock | None = None,
    url: str = BAO_ADDR,
) -> VaultSecretProvider:
    return VaultSecretProvider(
        settings_for(kv_path, url),
        environ={"VAULT_TOKEN": "root"} if environ is None else environ,
        clock=clock or FakeClock(),
    )


def write(client: hvac.Client, kv_path: str, name: str, value: str) -> int:
    response = client.secrets.kv.v2.create_or_update_secret(
        path=f"{kv_path}/{name}", secret={"value": value}, mount_point="secret"
    )
    return int(response["data"]["version"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_get_latest_specific_version_and_rotation(openbao: hvac.Client, kv_path: str):
    clock = FakeClock()
    provider = make(kv_path, clock=clock)
    assert isinstance(provider, SecretProvider)
    assert provider.backend == "vault"
    assert write(openbao, kv_path, "db_password", "first") == 1
    latest = provider.get("db_password")
    assert (latest.name, latest.value, latest.version) == ("db_password", "first", "1")

    assert write(openbao, kv_path, "db_password", "second") == 2
    assert provider.get("db_password").value == "first"  # cached
    clock.advance(31)
    assert provider.get("db_password").version == "2"
    assert provider.get("db_password").value == "second"
    assert provider.get("db_password", "1").value == "first"
    assert provider.get("db_password", "2").value == "second"
    with pytest.raises(SecretError, match="version 7"):
        provider.get("db_password", "7")
    with pytest.raises(SecretError, match="positive integer"):
        provider.get("db_password", "v1")


def test_missing_secret_and_bad_shape(openbao: hvac.Client, kv_path: str):
    provider = make(kv_path)
    with pytest.raises(SecretError) as info:
        provider.get("nothing_here")
    assert "'nothing_here'" in str(info.value)
    assert "vault backend" in str(info.value)
    openbao.secrets.kv.v2.create_or_update_secret(
        path=f"{kv_path}/wrong_field", secret={"password": "hunter2"}, mount_point="secret"
    )
    with pytest.raises(SecretError) as info:
        provider.get("wrong_field")
    assert "hunter2" not in str(info.value)
    with pytest.raises(SecretError):
        provider.get("../escape")


def test_provider_from_settings_builds_vault(kv_path: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VAULT_TOKEN", "root")
    provider = provider_from_settings(settings_for(kv_path))
    assert isinstance(provider, VaultSecretProvider)
    assert provider.health() == "ok"


def test_keyed_hash_via_transit_and_verify(openbao: hvac.Client, transit_key: str, kv_path: str):
    provider = make(kv_path)
    digest, version = provider.keyed_hash(transit_key, b"api key secret")
    assert version == "1"
    assert len(digest) == 64
    int(digest, 16)
    assert provider.keyed_hash(transit_key, b"api key secret") == (digest, "1")  # deterministic
    assert provider.verify_keyed_hash(transit_key, b"api key secret", digest, "1")
    assert not provider.verify_keyed_hash(transit_key, b"api key secreT", digest, "1")
    assert not provider.verify_keyed_hash(transit_key, b"api key secret", "0" * 64, "1")
    assert not provider.verify_keyed_hash(transit_key, b"api key secret", "zz", "1")
    assert not provider.verify_keyed_hash(transit_key, b"api key secret", digest, "2")  # too new
    assert not provider.verify_keyed_hash(transit_key, b"api key secret", digest, "v1")


def test_transit_rotation_keeps_old_digests_verifiable(
    openbao: hvac.Client, transit_key: str, kv_path: str
):
    provider = make(kv_path)
    old_digest, old_version = provider.keyed_hash(transit_key, b"data")
    openbao.secrets.transit.rotate_key(name=transit_key)
    new_digest, new_version = provider.keyed_hash(transit_key, b"data")
    assert (old_version, new_version) == ("1", "2")
    assert new_digest != old_digest
    assert provider.verify_keyed_hash(transit_key, b"data", old_digest, "1")
    assert provider.verify_keyed_hash(transit_key, b"data", new_digest, "2")
    assert not provider.verify_keyed_hash(transit_key, b"data", old_digest, "2")  # mismatch
    # Retiring version 1 makes its digests fail verification (False, not an error).
    openbao.secrets.transit.update_key_configuration(name=transit_key, min_decryption_version=2)
    assert not provider.verify_keyed_hash(transit_key, b"data", old_digest, "1")
    assert provider.verify_keyed_hash(transit_key, b"data", new_digest, "2")


def test_missing_transit_key_is_a_clear_error(openbao: hvac.Client, kv_path: str, unique: str):
    provider = make(kv_path)
    with pytest.raises(SecretError, match="no transit key transit/keys/"):
        provider.keyed_hash(f"{unique}-absent", b"x")
    with pytest.raises(SecretError, match="no transit key"):
        provider.verify_keyed_hash(f"{unique}-absent", b"x", "0" * 64, "1")


@pytest.fixture
def approle(openbao: hvac.Client, unique: str, kv_path: str, transit_key: str) -> Iterator[dict]:
    if "approle/" not in openbao.sys.list_auth_methods()["data"]:
        try:
            openbao.sys.enable_auth_method("approle")
        except hvac.exceptions.InvalidRequest as exc:
            if "already in use" not in str(exc):
                raise
    policy = f"""
path "secret/data/{kv_path}/*" {{ capabilities = ["read"] }}
path "transit/hmac/{transit_key}" {{ capabilities = ["update"] }}
path "transit/hmac/{transit_key}/*" {{ capabilities = ["update"] }}
path "transit/verify/{transit_key}" {{ capabilities = ["update"] }}
path "transit/verify/{transit_key}/*" {{ capabilities = ["update"] }}
"""
    openbao.sys.create_or_update_policy(name=unique, policy=policy)
    openbao.auth.approle.create_or_update_approle(
        role_name=unique, token_policies=[unique], token_ttl="5m"
    )
    role_id = openbao.auth.approle.read_role_id(role_name=unique)["data"]["role_id"]
    secret_id = openbao.auth.approle.generate_secret_id(role_name=unique)["data"]["secret_id"]
    yield {"VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    openbao.auth.approle.delete_role(role_name=unique)
    openbao.sys.delete_policy(name=unique)


def test_approle_login_and_relogin(
    openbao: hvac.Client, approle: dict, kv_path: str, transit_key: str
):
    write(openbao, kv_path, "pepper", "approle-value")
    clock = FakeClock()
    provider = make(kv_path, environ=dict(approle), clock=clock)
    assert provider.get("pepper").value == "approle-value"
    digest, version = provider.keyed_hash(transit_key, b"x")
    assert provider.verify_keyed_hash(transit_key, b"x", digest, version)
    assert provider.health() == "ok"

    # The token is revoked (or expired): the next call logs in again by itself.
    openbao.auth.token.revoke(provider._token)
    clock.advance(60)
    assert provider.get("pepper").value == "approle-value"

    # Outside its policy: permission denied, as a SecretError.
    write(openbao, "llama-mapper-tests-other", "pepper", "x")
    other = make("llama-mapper-tests-other", environ=dict(approle))
    with pytest.raises(SecretError, match="permission denied"):
        other.get("pepper")
    openbao.secrets.kv.v2.delete_metadata_and_all_versions(
        path="llama-mapper-tests-other/pepper", mount_point="secret"
    )


def test_bad_approle_credentials(openbao: hvac.Client, approle: dict, kv_path: str):
    environ = {"VAULT_ROLE_ID": approle["VAULT_ROLE_ID"], "VAULT_SECRET_ID": "not-the-secret-id"}
    with pytest.raises(SecretError, match="AppRole login failed") as info:
        make(kv_path, environ=environ).get("pepper")
    assert "not-the-secret-id" not in str(info.value)


def test_wrong_token_error_does_not_leak_it(openbao: hvac.Client, kv_path: str):
    token = "s.wrong-token-do-not-print"
    write(openbao, kv_path, "pepper", "value-do-not-print")
    provider = make(kv_path, environ={"VAULT_TOKEN": token})
    with pytest.raises(SecretError) as info:
        provider.get("pepper")
    assert "permission denied" in str(info.value)
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value) + repr(provider)
    assert token not in shown
    assert "value-do-not-print" not in shown
    assert provider.health() != "ok"
    assert token not in provider.health()


def test_no_credentials(kv_path: str):
    with pytest.raises(SecretError, match=r"\$VAULT_TOKEN.*\$VAULT_ROLE_ID"):
        make(kv_path, environ={}).get("pepper")


def test_no_address_is_a_config_error():
    with pytest.raises(SecretError, match="vault_url"):
        VaultSecretProvider(SecretsSettings(backend="vault"), environ={})


def test_unreachable_server(kv_path: str):
    url = f"http://127.0.0.1:{closed_port()}"
    provider = make(kv_path, url=url)
    with pytest.raises(SecretError, match="unreachable") as info:
        provider.get("pepper")
    assert info.value.__cause__ is None
    with pytest.raises(SecretError, match="unreachable"):
        provider.keyed_hash("key", b"x")
    reason = provider.health()
    assert reason != "ok"
    assert "unreachable" in reason


def test_health_ok(openbao: hvac.Client, kv_path: str):
    assert make(kv_path).health() == "ok"


def test_concurrent_use(openbao: hvac.Client, kv_path: str, transit_key: str):
    write(openbao, kv_path, "pepper", "shared")
    provider = VaultSecretProvider(
        settings_for(kv_path, cache_seconds=0), environ={"VAULT_TOKEN": "root"}
    )
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                assert provider.get("pepper").value == "shared"
                digest, version = provider.keyed_hash(transit_key, b"x")
                assert provider.verify_keyed_hash(transit_key, b"x", digest, version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
