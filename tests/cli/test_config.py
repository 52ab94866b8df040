"""``validate-config``, ``show-config`` and ``init-config``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llama_mapper.catalog import load_catalog
from llama_mapper.config.settings import Settings

SECRET = "hmac-Secret-Value-7f3a9c"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_tree(tmp_path: Path) -> Path:
    """conf/mapper.yaml with environments/staging.yaml and tenants/acme.yaml next to it."""
    root = tmp_path / "conf"
    write(
        root / "environments" / "staging.yaml",
        "serving:\n  port: 9100\nguard:\n  max_lines: 2\n",
    )
    write(
        root / "tenants" / "acme.yaml",
        "mapping:\n  detector_thresholds:\n    openai-moderation: 0.75\n"
        "guard:\n  max_string_chars: 200\n",
    )
    return write(
        root / "mapper.yaml",
        "environment: production\n"
        "serving:\n  max_payload_kb: 32\n  port: 9000\n"
        "mapping:\n  default_threshold: 0.4\n",
    )


def _one_error_line(result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- validate-config ---------------------------------------------------------------


def test_validate_without_config(ok):
    catalog = load_catalog()
    result = ok("validate-config")
    assert result.stdout == (
        f"configuration valid: taxonomy {catalog.taxonomy.version} "
        f"({len(catalog.taxonomy)} labels), {len(catalog.packs)} detector packs, "
        "0 tenant overlay(s), environment 'development'\n"
    )


def test_validate_valid_file(ok, config_tree):
    result = ok("validate-config", "--config", config_tree)
    assert result.stdout.startswith("configuration valid: ")
    assert "1 tenant overlay(s), environment 'production'" in result.stdout


def test_validate_reads_llama_mapper_config_env(ok, config_tree, monkeypatch):
    monkeypatch.setenv("LLAMA_MAPPER_CONFIG", str(config_tree))
    assert "environment 'production'" in ok("validate-config").stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "serving:\n  port: not-a-number\n",
            "error: invalid configuration: serving.port: Input should be a valid integer",
        ),
        ("serving:\n  port: 70000\n", "error: invalid configuration: serving.port: "),
        (
            "bogus_key: 1\n",
            "error: invalid configuration: bogus_key: Extra inputs are not permitted",
        ),
        (
            "serving:\n  prot: 9000\n",
            "error: invalid configuration: serving.prot: Extra inputs are not permitted",
        ),
        ("mapping:\n  default_threshold: 1.5\n", "error: invalid configuration: mapping."),
    ],
    ids=["bad-type", "out-of-range", "unknown-key", "unknown-nested-key", "bad-threshold"],
)
def test_validate_invalid_values(cli, tmp_path, text, expected):
    path = write(tmp_path / "bad.yaml", text)
    line = _one_error_line(cli("validate-config", "-c", path))
    assert line.startswith(expected)
    assert "not-a-number" not in line  # messages name the field, never the value


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("serving: [\n", "invalid YAML"),
        ("just a string\n", "a config file must be a mapping of settings"),
        ("- a\n- b\n", "a config file must be a mapping of settings"),
        ("123\n", "a config file must be a mapping of settings"),
        ("serving:\n  port: 1\nserving:\n  port: 2\n", "duplicate key 'serving'"),
    ],
    ids=["syntax", "scalar", "list", "number", "duplicate-key"],
)
def test_validate_unreadable_file(cli, tmp_path, text, problem):
    path = write(tmp_path / "bad.yaml", text)
    line = _one_error_line(cli("validate-config", "-c", path))
    assert line.startswith(f"error: {path}: ")
    assert problem in line


def test_validate_empty_file_is_defaults(ok, tmp_path):
    path = write(tmp_path / "empty.yaml", "")
    assert "environment 'development'" in ok("validate-config", "-c", path).stdout


def test_validate_missing_file(cli, tmp_path):
    line = _one_error_line(cli("validate-config", "-c", tmp_path / "nope.yaml"))
    assert line == f"error: config file {tmp_path / 'nope.yaml'} not found"


def test_validate_bad_env_var(cli, monkeypatch):
    monkeypatch.setenv("LLAMA_MAPPER_SERVING__PORT", "eighty")
    line = _one_error_line(cli("validate-config"))
    assert line.startswith("error: invalid configuration: serving.port: ")


def test_validate_unparsable_env_var(cli, monkeypatch):
    monkeypatch.setenv("LLAMA_MAPPER_SERVING", "{not json")
    line = _one_error_line(cli("validate-config"))
    assert line.startswith("error: invalid configuration: ")
    assert "serving" in line


@pytest.mark.parametrize(
    ("overlay", "problem"),
    [
        ("serving:\n  port: 1\n", "tenants may only set mapping, guard, audit"),
        ("mapping:\n  default_threshold: two\n", "mapping.default_threshold: "),
        ("guard:\n  max_words: 1\n", "guard.max_words: "),
        ("mapping: [\n", "invalid YAML"),
        ("- mapping\n", "an overlay must be a mapping"),
    ],
    ids=["forbidden-section", "bad-type", "out-of-range", "syntax", "not-a-mapping"],
)
def test_validate_broken_tenant_overlay(cli, tmp_path, overlay, problem):
    config = write(tmp_path / "conf" / "mapper.yaml", "environment: production\n")
    tenant = write(tmp_path / "conf" / "tenants" / "x.yaml", overlay)
    line = _one_error_line(cli("validate-config", "-c", config))
    assert line.startswith(f"error: {tenant}: ")
    assert problem in line


def test_validate_broken_tenant_overlay_in_config_dir(cli, tmp_path):
    overlays = tmp_path / "overlays"
    write(overlays / "tenants" / "x.yaml", "serving:\n  port: 1\n")
    config = write(tmp_path / "mapper.yaml", f"config_dir: {overlays}\n")
    line = _one_error_line(cli("validate-config", "-c", config))
    assert (
        line
        == f"error: {overlays / 'tenants' / 'x.yaml'}: tenants may only set mapping, guard, audit"
    )


def test_validate_broken_environment_overlay(cli, tmp_path):
    config = write(tmp_path / "conf" / "mapper.yaml", "environment: staging\n")
    env = write(tmp_path / "conf" / "environments" / "staging.yaml", "serving:\n  port: x\n")
    line = _one_error_line(cli("validate-config", "-c", config))
    assert line.startswith(f"error: {env}: serving.port: ")


def test_validate_missing_data_dir(cli, tmp_path):
    config = write(tmp_path / "mapper.yaml", f"data_dir: {tmp_path / 'nowhere'}\n")
    line = _one_error_line(cli("validate-config", "-c", config))
    assert line == f"error: data directory {tmp_path / 'nowhere'} does not exist"


# --- show-config -------------------------------------------------------------------


def test_show_config_applies_environment_and_tenant(ok, config_tree, monkeypatch):
    monkeypatch.setenv("LLAMA_MAPPER_PRIVACY__HMAC_KEY", SECRET)
    result = ok(
        "show-config", "--tenant", "acme", "--environment", "staging", "-c", config_tree, "--json"
    )
    data = json.loads(result.stdout)
    assert data["environment"] == "staging"
    assert data["tenant"] == "acme"
    assert data["serving"]["port"] == 9100  # environments/staging.yaml beats the file's 9000
    assert data["serving"]["max_payload_kb"] == 32  # from the file
    assert data["guard"]["max_lines"] == 2  # environments/staging.yaml
    assert data["guard"]["max_string_chars"] == 200  # tenants/acme.yaml
    assert data["mapping"]["default_threshold"] == 0.4  # from the file
    assert data["mapping"]["detector_thresholds"] == {"openai-moderation": 0.75}  # tenant
    assert data["privacy"]["hmac_key"] == "**********"
    assert data["state_dir"] == str(Path.cwd() / "state")
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr


def test_show_config_yaml_masks_secret_from_file(ok, tmp_path):
    config = write(tmp_path / "mapper.yaml", f"privacy:\n  hmac_key: {SECRET}\n")
    result = ok("show-config", "-c", config)
    data = yaml.safe_load(result.stdout)
    assert data["privacy"]["hmac_key"] == "**********"
    assert SECRET not in result.stdout
    assert SECRET not in result.stderr


def test_show_config_without_secret_shows_null(ok):
    data = json.loads(ok("show-config", "--json").stdout)
    assert data["privacy"]["hmac_key"] is None
    assert "tenant" not in data


def test_show_config_environment_other_than_file(ok, config_tree):
    """Without --environment the file's own environment (production) applies: no overlay."""
    data = json.loads(ok("show-config", "-c", config_tree, "--json").stdout)
    assert data["environment"] == "production"
    assert data["serving"]["port"] == 9000
    assert data["mapping"]["detector_thresholds"] == {}


def test_env_var_beats_config_file(ok, config_tree, monkeypatch):
    monkeypatch.setenv("LLAMA_MAPPER_SERVING__MAX_PAYLOAD_KB", "128")
    monkeypatch.setenv("LLAMA_MAPPER_MAPPING__DEFAULT_THRESHOLD", "0.65")
    data = json.loads(ok("show-config", "-c", config_tree, "--json").stdout)
    assert data["serving"]["max_payload_kb"] == 128
    assert data["mapping"]["default_threshold"] == 0.65
    assert data["serving"]["port"] == 9000  # untouched keys still come from the file


def test_environment_overlay_beats_env_var(ok, config_tree, monkeypatch):
    monkeypatch.setenv("LLAMA_MAPPER_SERVING__PORT", "8123")
    data = json.loads(ok("show-config", "-c", config_tree, "-e", "staging", "--json").stdout)
    assert data["serving"]["port"] == 9100


def test_show_config_unknown_tenant_is_base(ok, config_tree):
    data = json.loads(ok("show-config", "-c", config_tree, "-t", "nobody", "--json").stdout)
    assert data["tenant"] == "nobody"
    assert data["mapping"]["detector_thresholds"] == {}


def test_show_config_broken_tenant(cli, tmp_path):
    config = write(tmp_path / "conf" / "mapper.yaml", "")
    write(tmp_path / "conf" / "tenants" / "x.yaml", "legacy:\n  sunset: never\n")
    line = _one_error_line(cli("show-config", "-c", config, "--tenant", "x"))
    assert line.endswith("tenants may only set mapping, guard, audit")


# --- init-config -------------------------------------------------------------------


def test_init_config_round_trip(ok, tmp_path):
    out = tmp_path / "sub" / "mapper.yaml"
    out.parent.mkdir()
    assert ok("init-config", "-o", out).stdout == f"wrote {out}\n"
    text = out.read_text()
    assert text.startswith("# llama-mapper configuration.")
    data = yaml.safe_load(text)
    assert data == Settings.model_construct().model_dump(mode="json")
    assert data["privacy"]["hmac_key"] is None
    result = ok("validate-config", "--config", out)
    assert result.stdout.startswith("configuration valid: ")


def test_init_config_writes_defaults_not_the_shell_environment(ok, tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA_MAPPER_SERVING__PORT", "1234")
    monkeypatch.setenv("LLAMA_MAPPER_PRIVACY__HMAC_KEY", SECRET)
    out = tmp_path / "mapper.yaml"
    ok("init-config", "-o", out)
    data = yaml.safe_load(out.read_text())
    assert data["serving"]["port"] == 8000
    assert data["state_dir"] == ".llama-mapper"
    assert SECRET not in out.read_text()


def test_init_config_refuses_to_overwrite(cli, ok, tmp_path):
    out = write(tmp_path / "mapper.yaml", "# mine\n")
    line = _one_error_line(cli("init-config", "-o", out))
    assert line == f"error: {out} exists; pass --force to overwrite"
    assert out.read_text() == "# mine\n"
    ok("init-config", "-o", out, "--force")
    assert out.read_text().startswith("# llama-mapper configuration.")
