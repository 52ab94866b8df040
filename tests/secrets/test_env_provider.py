"""The embedded env/file secret provider: lookup order, versions, rotation, fallback, hashing."""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
import threading
import traceback
from pathlib import Path

import pytest

from llama_mapper.config.settings import SecretsSettings
from llama_mapper.secrets import (
    EnvSecretProvider,
    Secret,
    SecretError,
    SecretProvider,
    env_var_name,
    provider_from_settings,
)

VALUE = "s3cr3t-pepper-value"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def vid(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def make(
    environ: dict[str, str] | None = None,
    directory: Path | None = None,
    cache_seconds: float = 60.0,
    clock: FakeClock | None = None,
    fallback_dir: Path | None = None,
) -> EnvSecretProvider:
    settings = SecretsSettings(directory=directory, cache_seconds=cache_seconds)
    return EnvSecretProvider(
        settings,
        environ=environ if environ is not None else {},
        clock=clock or FakeClock(),
        fallback_dir=fallback_dir,
    )


def test_env_var_name_mapping():
    assert env_var_name("api_key_pepper") == "LLAMA_MAPPER_SECRET_API_KEY_PEPPER"
    assert env_var_name("db-pass.word") == "LLAMA_MAPPER_SECRET_DB_PASS_WORD"


def test_reads_env_var_with_hash_version():
    provider = make({"LLAMA_MAPPER_SECRET_API_KEY_PEPPER": VALUE})
    secret = provider.get("api_key_pepper")
    assert secret == Secret("api_key_pepper", VALUE, vid(VALUE))
    assert len(secret.version) == 12
    assert provider.get("api_key_pepper", vid(VALUE)).value == VALUE
    assert provider.backend == "env"
    assert isinstance(provider, SecretProvider)


def test_reads_live_os_environ(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLAMA_MAPPER_SECRET_LIVE_ONE", VALUE)
    provider = EnvSecretProvider(SecretsSettings())
    assert provider.get("live_one").value == VALUE


def test_reads_file_and_strips_one_trailing_newline(tmp_path: Path):
    (tmp_path / "db_password").write_text("pa ss\n")
    (tmp_path / "crlf").write_bytes(b"value\r\n")
    provider = make(directory=tmp_path)
    assert provider.get("db_password").value == "pa ss"
    assert provider.get("crlf").value == "value"


def test_env_var_wins_over_file(tmp_path: Path):
    (tmp_path / "pepper").write_text("from-file\n")
    provider = make({"LLAMA_MAPPER_SECRET_PEPPER": "from-env"}, directory=tmp_path)
    assert provider.get("pepper").value == "from-env"


def test_previous_versions_from_env_and_file(tmp_path: Path):
    (tmp_path / "pepper").write_text("new\n")
    (tmp_path / "pepper.previous").write_text("old1\nold2\n\n")
    provider = make({"LLAMA_MAPPER_SECRET_PEPPER_PREVIOUS": "older, new"}, directory=tmp_path)
    assert provider.get("pepper").value == "new"
    for old in ("old1", "old2", "older"):
        assert provider.get("pepper", vid(old)) == Secret("pepper", old, vid(old))
    with pytest.raises(SecretError) as info:
        provider.get("pepper", vid("never-existed"))
    assert "pepper" in str(info.value)
    for value in ("new", "old1", "old2", "older"):
        assert f"'{value}'" not in str(info.value)


def test_cache_then_rotation_without_restart(tmp_path: Path):
    clock = FakeClock()
    path = tmp_path / "pepper"
    path.write_text("one\n")
    provider = make(directory=tmp_path, cache_seconds=30, clock=clock)
    assert provider.get("pepper").value == "one"
    path.write_text("two\n")
    clock.advance(29)
    assert provider.get("pepper").value == "one"  # still cached
    clock.advance(2)
    assert provider.get("pepper") == Secret("pepper", "two", vid("two"))


def test_env_rotation_picked_up_after_cache_expiry():
    clock = FakeClock()
    environ = {"LLAMA_MAPPER_SECRET_PEPPER": "one"}
    provider = make(environ, cache_seconds=5, clock=clock)
    assert provider.get("pepper").value == "one"
    environ["LLAMA_MAPPER_SECRET_PEPPER"] = "two"
    environ["LLAMA_MAPPER_SECRET_PEPPER_PREVIOUS"] = "one"
    assert provider.get("pepper").value == "one"
    clock.advance(6)
    assert provider.get("pepper").value == "two"
    assert provider.get("pepper", vid("one")).value == "one"


def test_zero_cache_reads_every_time():
    environ = {"LLAMA_MAPPER_SECRET_PEPPER": "one"}
    provider = make(environ, cache_seconds=0)
    assert provider.get("pepper").value == "one"
    environ["LLAMA_MAPPER_SECRET_PEPPER"] = "two"
    assert provider.get("pepper").value == "two"


def test_unknown_version_forces_a_reread():
    """A digest made by another process with a newer pepper verifies before the cache expires."""
    environ = {"LLAMA_MAPPER_SECRET_PEPPER": "one"}
    provider = make(environ, cache_seconds=3600)
    assert provider.get("pepper").value == "one"
    environ["LLAMA_MAPPER_SECRET_PEPPER"] = "two"
    assert provider.get("pepper", vid("two")).value == "two"


def test_missing_secret_error_names_secret_and_backend_only():
    provider = make({"LLAMA_MAPPER_SECRET_OTHER": VALUE})
    with pytest.raises(SecretError) as info:
        provider.get("api_key_pepper")
    message = str(info.value)
    assert "'api_key_pepper'" in message
    assert "env backend" in message
    assert "LLAMA_MAPPER_SECRET_API_KEY_PEPPER" in message
    assert VALUE not in message
    assert info.value.name == "api_key_pepper"
    assert info.value.backend == "env"


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "a/b", ".hidden", "", "x" * 200, "pepper.previous"]
)
def test_bad_names_are_refused(tmp_path: Path, name: str):
    provider = make(directory=tmp_path)
    with pytest.raises(SecretError):
        provider.get(name)


def test_empty_file_is_an_error(tmp_path: Path):
    (tmp_path / "pepper").write_text("\n")
    with pytest.raises(SecretError, match="empty"):
        make(directory=tmp_path).get("pepper")


def test_undecodable_file_does_not_leak_bytes(tmp_path: Path):
    (tmp_path / "pepper").write_bytes(b"SECRETBYTES\xff\xfe")
    with pytest.raises(SecretError) as info:
        make(directory=tmp_path).get("pepper")
    text = "".join(traceback.format_exception(info.value))
    assert "SECRETBYTES" not in text
    assert "xff" not in text


def test_secret_repr_hides_value():
    secret = Secret("pepper", VALUE, "abc")
    assert VALUE not in repr(secret)
    assert VALUE not in str(secret)
    assert "pepper" in repr(secret)
    assert "abc" in repr(secret)
    with pytest.raises(AttributeError):
        secret.value = "x"  # type: ignore[misc]


def test_provider_repr_has_no_values(tmp_path: Path):
    provider = make({"LLAMA_MAPPER_SECRET_PEPPER": VALUE}, directory=tmp_path)
    provider.get("pepper")
    assert VALUE not in repr(provider)


# --- generated fallback ----------------------------------------------------------------


def test_fallback_generated_once_with_0600_and_stable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    fallback = tmp_path / "state" / "secrets"
    caplog.set_level(logging.DEBUG, logger="llama_mapper.secrets")
    first = make(fallback_dir=fallback).get("api_key_pepper")
    path = fallback / "api_key_pepper"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(fallback.stat().st_mode) & 0o077 == 0
    assert len(first.value) == 64  # 32 random bytes, hex
    assert path.read_text() == first.value + "\n"
    assert [p.name for p in fallback.iterdir()] == ["api_key_pepper"]  # no temp file left
    again = make(fallback_dir=fallback).get("api_key_pepper")
    assert again == first
    assert "api_key_pepper" in caplog.text
    assert first.value not in caplog.text
    other = make(fallback_dir=fallback).get("other_key")
    assert other.value != first.value


def test_fallback_generation_is_race_free(tmp_path: Path):
    fallback = tmp_path / "secrets"
    providers = [make(fallback_dir=fallback) for _ in range(8)]
    results: list[str] = []
    barrier = threading.Barrier(len(providers))

    def work(provider: EnvSecretProvider) -> None:
        barrier.wait()
        results.append(provider.get("pepper").value)

    threads = [threading.Thread(target=work, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert len(set(results)) == 1
    assert [p.name for p in fallback.iterdir()] == ["pepper"]


def test_env_var_wins_over_fallback_and_nothing_is_generated(tmp_path: Path):
    fallback = tmp_path / "secrets"
    provider = make({"LLAMA_MAPPER_SECRET_PEPPER": VALUE}, fallback_dir=fallback)
    assert provider.get("pepper").value == VALUE
    assert not fallback.exists()


def test_no_generation_for_a_specific_version(tmp_path: Path):
    fallback = tmp_path / "secrets"
    with pytest.raises(SecretError):
        make(fallback_dir=fallback).get("pepper", "0123456789ab")
    assert not (fallback / "pepper").exists()


def test_provider_from_settings_uses_fallback_only_without_directory(tmp_path: Path):
    fallback = tmp_path / "fallback"
    provider = provider_from_settings(SecretsSettings(), fallback_dir=fallback)
    assert provider.backend == "env"
    assert len(provider.get("generated_for_test").value) == 64

    configured = tmp_path / "configured"
    configured.mkdir()
    provider = provider_from_settings(SecretsSettings(directory=configured), fallback_dir=fallback)
    with pytest.raises(SecretError, match="not set"):
        provider.get("another_one")
    assert not (fallback / "another_one").exists()
    assert not (configured / "another_one").exists()


def test_without_fallback_dir_nothing_is_generated():
    with pytest.raises(SecretError, match="not set"):
        provider_from_settings(SecretsSettings()).get("surely_missing_secret_xyz")


# --- keyed hashes ----------------------------------------------------------------------


def test_keyed_hash_round_trip_and_mismatches():
    environ = {"LLAMA_MAPPER_SECRET_PEPPER": "one"}
    provider = make(environ, cache_seconds=0)
    digest, version = provider.keyed_hash("pepper", b"data")
    assert digest == hmac.new(b"one", b"data", hashlib.sha256).hexdigest()
    assert version == vid("one")
    assert provider.verify_keyed_hash("pepper", b"data", digest, version)
    assert provider.verify_keyed_hash("pepper", b"data", digest.upper(), version)
    assert not provider.verify_keyed_hash("pepper", b"datA", digest, version)
    assert not provider.verify_keyed_hash("pepper", b"data", "0" * 64, version)
    assert not provider.verify_keyed_hash("pepper", b"data", "not hex", version)
    assert not provider.verify_keyed_hash("pepper", b"data", digest, "000000000000")

    # Rotation: the old digest still verifies with its own version while it is "previous".
    environ["LLAMA_MAPPER_SECRET_PEPPER"] = "two"
    environ["LLAMA_MAPPER_SECRET_PEPPER_PREVIOUS"] = "one"
    new_digest, new_version = provider.keyed_hash("pepper", b"data")
    assert new_version == vid("two")
    assert new_digest != digest
    assert provider.verify_keyed_hash("pepper", b"data", digest, version)
    assert provider.verify_keyed_hash("pepper", b"data", new_digest, new_version)
    assert not provider.verify_keyed_hash("pepper", b"data", digest, new_version)  # mismatch

    # Retiring the old value makes its digests unverifiable (False, not an error).
    del environ["LLAMA_MAPPER_SECRET_PEPPER_PREVIOUS"]
    assert not provider.verify_keyed_hash("pepper", b"data", digest, version)


def test_keyed_hash_missing_key_raises():
    provider = make({})
    with pytest.raises(SecretError):
        provider.keyed_hash("pepper", b"x")
    with pytest.raises(SecretError):
        provider.verify_keyed_hash("pepper", b"x", "0" * 64, "abc")


def test_health(tmp_path: Path):
    assert make().health() == "ok"
    assert make(directory=tmp_path).health() == "ok"
    reason = make(directory=tmp_path / "nope").health()
    assert reason != "ok"
    assert "does not exist" in reason


def test_concurrent_reads_are_consistent():
    environ = {"LLAMA_MAPPER_SECRET_PEPPER": VALUE}
    provider = make(environ, cache_seconds=0.001, clock=None)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                digest, version = provider.keyed_hash("pepper", b"x")
                assert provider.verify_keyed_hash("pepper", b"x", digest, version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_secret_error_forms():
    full = SecretError("pepper", "env", "not set")
    assert str(full) == "secret 'pepper' (env backend): not set"
    assert (full.name, full.backend, full.reason) == ("pepper", "env", "not set")
    assert str(SecretError("", "vault", "no address")) == "vault secrets backend: no address"
    plain = SecretError("a plain message")
    assert str(plain) == "a plain message"
    assert plain.reason == "a plain message"
