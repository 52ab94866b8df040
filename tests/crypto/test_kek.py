"""KEKs: the named, versioned secret (env backend) and Vault/OpenBao transit (real server):
wrap/unwrap, rotation with re-wrap, and fail-closed unwrapping."""

from __future__ import annotations

import hvac
import pytest
from tests.secrets.conftest import BAO_ADDR, ROOT_TOKEN

from llama_mapper.config.settings import SecretsSettings
from llama_mapper.crypto import (
    DecryptionError,
    LocalKeyWrapper,
    TransitKeyWrapper,
    key_wrapper,
)
from llama_mapper.crypto.envelope import new_dek
from llama_mapper.secrets import EnvSecretProvider, VaultSecretProvider, env_var_name

KEK = "audit_metadata_kek"


def _local(environ: dict[str, str]) -> LocalKeyWrapper:
    provider = EnvSecretProvider(SecretsSettings(cache_seconds=0), environ=environ)
    wrapper = key_wrapper(provider, KEK)
    assert isinstance(wrapper, LocalKeyWrapper)
    return wrapper


def test_local_wrap_rotate_rewrap() -> None:
    environ = {env_var_name(KEK): "kek-one"}
    wrapper = _local(environ)
    dek = new_dek()
    kek_id, wrapped = wrapper.wrap(dek, "acme")
    assert kek_id.startswith("local:")
    assert wrapper.unwrap(kek_id, wrapped, "acme") == dek
    assert wrapper.rewrap(kek_id, wrapped, "acme") is None  # already the newest
    with pytest.raises(DecryptionError):
        wrapper.unwrap(kek_id, wrapped, "other-tenant")  # bound to its tenant
    # Rotate: new value, the old one kept as previous.
    environ[env_var_name(KEK)] = "kek-two"
    environ[env_var_name(KEK) + "_PREVIOUS"] = "kek-one"
    assert wrapper.unwrap(kek_id, wrapped, "acme") == dek  # the old version still opens
    moved = wrapper.rewrap(kek_id, wrapped, "acme")
    assert moved is not None
    assert moved[0] != kek_id
    assert wrapper.unwrap(*moved, "acme") == dek
    # Retire the old version: its wraps fail closed, the re-wrapped one still opens.
    del environ[env_var_name(KEK) + "_PREVIOUS"]
    with pytest.raises(DecryptionError, match="not available"):
        wrapper.unwrap(kek_id, wrapped, "acme")
    assert wrapper.unwrap(*moved, "acme") == dek


def test_local_wrong_key_fails_closed() -> None:
    dek = new_dek()
    kek_id, wrapped = _local({env_var_name(KEK): "kek-one"}).wrap(dek, "acme")
    # Another install whose secret happens to have... a different value: no such version.
    other = _local({env_var_name(KEK): "kek-other"})
    with pytest.raises(DecryptionError):
        other.unwrap(kek_id, wrapped, "acme")
    with pytest.raises(DecryptionError, match="another KEK backend"):
        other.unwrap("vault:v1", wrapped, "acme")
    with pytest.raises(DecryptionError):
        _local({env_var_name(KEK): "kek-one"}).unwrap(kek_id, wrapped[:-8] + "AAAAAAA=", "acme")


@pytest.fixture
def transit(openbao: hvac.Client, unique: str) -> tuple[TransitKeyWrapper, str]:
    name = f"{unique}-kek"
    openbao.secrets.transit.create_key(name=name, key_type="aes256-gcm96")
    vault = VaultSecretProvider(
        SecretsSettings(backend="vault", vault_url=BAO_ADDR), environ={"VAULT_TOKEN": ROOT_TOKEN}
    )
    wrapper = key_wrapper(vault, name)
    assert isinstance(wrapper, TransitKeyWrapper)
    return wrapper, name


def test_transit_wrap_rotate_rewrap(
    openbao: hvac.Client, transit: tuple[TransitKeyWrapper, str]
) -> None:
    wrapper, name = transit
    dek = new_dek()
    kek_id, wrapped = wrapper.wrap(dek, "acme")
    assert kek_id == "vault:v1"
    assert wrapper.unwrap(kek_id, wrapped, "acme") == dek
    assert wrapper.rewrap(kek_id, wrapped, "acme") is None
    openbao.secrets.transit.rotate_key(name=name)
    moved = wrapper.rewrap(kek_id, wrapped, "acme")
    assert moved is not None
    assert moved[0] == "vault:v2"
    assert wrapper.unwrap(*moved, "acme") == dek
    assert wrapper.unwrap(kek_id, wrapped, "acme") == dek  # rotated: old still decrypts
    # Retire v1: its ciphertext fails closed, without Vault's text in the message.
    openbao.secrets.transit.update_key_configuration(name=name, min_decryption_version=2)
    with pytest.raises(DecryptionError) as caught:
        wrapper.unwrap(kek_id, wrapped, "acme")
    assert wrapped not in str(caught.value)
    # A ciphertext claiming another version than it has is refused before Vault.
    with pytest.raises(DecryptionError):
        wrapper.unwrap("vault:v2", wrapped, "acme")
