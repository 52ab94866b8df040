"""Schemathesis fuzzes orch's job operations and ``POST /orchestrate`` (async included)
with API keys on: every answer conforms to the served OpenAPI spec, and no request, valid
or not, gets a 5xx. Generated requests carry a valid key of tenant ``0`` (so jobs are
really submitted, read and cancelled); schemathesis' own checks send some without it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from tests.orch.core.conftest import TinyPhoneDetector

from detector_orchestration.api.app import create_app
from detector_orchestration.config import OrchSettings
from detector_orchestration.runtime import build_orch_runtime
from llama_mapper.config.settings import load_settings
from llama_mapper.storage.db.migrate import upgrade

_settings = load_settings(
    state_dir=tempfile.mkdtemp(prefix="orch-jobs-fuzz-"),
    auth={"enabled": True},
    rate_limit={"per_ip": {"rate": 1_000_000}, "per_key": {"rate": 1_000_000}},
)
# The packaged default bundle's detectors, each answered by the in-test built-in.
_builtins = {
    name: type(f"Fuzz_{name}", (TinyPhoneDetector,), {"name": name})
    for name in ("regex-pii", "secrets", "prompt-injection")
}
_runtime = build_orch_runtime(OrchSettings(), _settings, builtins=_builtins)


async def _prepare() -> str:
    await upgrade(_runtime.shared.engine)
    assert _runtime.shared.auth is not None
    _, key = await _runtime.shared.auth.create_key("0", ["map:write", "map:read"], None)
    await _runtime.shared.engine.dispose()  # the connections belong to this loop
    return key


KEY = asyncio.run(_prepare())
app = create_app(runtime=_runtime)
schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
    path_regex=r"^/(jobs/|orchestrate$)"
)
MAX_EXAMPLES = int(os.environ.get("LLAMA_MAPPER_FUZZ_EXAMPLES", "150")) // 2


@pytest.mark.fuzz
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_job_operations_conform_to_their_openapi(case: schemathesis.Case) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    response = case.call(headers=headers)
    assert response.status_code < 500, response.text
    # A schema-valid body may name a bundle that does not exist: a documented 422.
    case.validate_response(response, headers=headers, excluded_checks=[positive_data_acceptance])
