"""Schemathesis over the spec a production deployment serves: API keys on.

Every generated request carries a valid key (so the mapping code is reached); schemathesis'
own checks send requests without it and expect the documented 401.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from llama_mapper.api.app import create_app
from llama_mapper.catalog import load_catalog
from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import build_runtime
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade

_settings = load_settings(
    state_dir=tempfile.mkdtemp(prefix="llama-mapper-fuzz-auth-"),
    auth={"enabled": True},
    # Schemathesis sends many unauthenticated requests: they must meet 401, not the
    # per-IP limit that protects a real server from exactly such floods.
    rate_limit={"per_ip": {"rate": 1_000_000}, "per_key": {"rate": 1_000_000}},
)
_runtime = build_runtime(_settings, service=MapperService(_settings, load_catalog()))


async def _prepare() -> str:
    await upgrade(_runtime.engine)
    assert _runtime.auth is not None
    _, key = await _runtime.auth.create_key("0", ["map:write"], None)
    await _runtime.engine.dispose()  # the connections belong to this loop; reopen later
    return key


KEY = asyncio.run(_prepare())
app = create_app(runtime=_runtime)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
MAX_EXAMPLES = int(os.environ.get("LLAMA_MAPPER_FUZZ_EXAMPLES", "150")) // 2


@pytest.mark.fuzz
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_secured_api_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    response = case.call(headers=headers)
    assert response.status_code < 500, response.text
    # As in test_openapi_fuzz: detector-specific validity is not expressible in OpenAPI.
    case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])
