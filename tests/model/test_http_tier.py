"""The OpenAI-compatible HTTP backend against a real loopback server, through the mapper API.

The server (tests/model/chat_server.py) speaks the documented chat-completions shape and
misbehaves on purpose; every failure must reach the client as a 200 with a fallback
reason in ``provenance.model_fallback``, never as an error.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from llama_mapper.api.app import create_app
from llama_mapper.catalog import Catalog
from llama_mapper.config.settings import Settings, load_settings
from llama_mapper.mapping.learned import Fallback, Prediction
from llama_mapper.model import prompt
from llama_mapper.model.http_tier import HttpTier, Outcome
from llama_mapper.model.openai_wire import WireError, calibrated, parse_answer
from llama_mapper.model.serving import http_tier, tier_from_settings
from llama_mapper.observability.metrics import MODEL_CALL_OUTCOMES
from llama_mapper.service import MapperService
from llama_mapper.storage.db.migrate import upgrade

from . import chat_server
from .chat_server import ChatServer

NEW_VENDOR = "acme-new-scanner"  # no pack: taxonomy names/aliases, then the model
LABELS = [
    "PII.Identifier.SSN",
    "PII.Contact.Email",
    "HARM.VIOLENCE.Physical",
    "OTHER.Unknown",
]


@pytest.fixture
def server() -> Iterator[ChatServer]:
    yield from chat_server.serve()


def model_folder(tmp_path: Path, temperature: float = 1.0) -> Path:
    folder = tmp_path / "causal-x"
    folder.mkdir()
    card = {
        "version": "causal-x",
        "kind": "causal",
        "base_model": "tiny",
        "taxonomy_version": "2026.11",
        "data_hash": "0" * 64,
        "seed": 0,
        "prompt_version": prompt.PROMPT_VERSION,
    }
    (folder / "model_card.json").write_bytes(orjson.dumps(card))
    (folder / "labels.json").write_bytes(orjson.dumps(LABELS))
    (folder / "calibration.json").write_bytes(orjson.dumps({"temperature": temperature}))
    return folder


@pytest.fixture
def http_env(
    server: ChatServer, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> pytest.MonkeyPatch:
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__ENABLED", "true")
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__BACKEND", "openai")
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__MODEL_DIR", str(model_folder(tmp_path)))
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__HTTP__URL", server.url)
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__HTTP__TIMEOUT_SECONDS", "0.3")
    return monkeypatch


@pytest.fixture
def settings(http_env: pytest.MonkeyPatch) -> Settings:
    return load_settings()


async def map_label(client: httpx.AsyncClient, label: str) -> dict[str, object]:
    payload = {"detector": NEW_VENDOR, "output": label, "tenant_id": "acme"}
    response = await client.post("/map", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def provenance(body: dict[str, object]) -> dict[str, object]:
    value = body["provenance"]
    assert isinstance(value, dict)
    return value


async def test_unknown_label_is_answered_by_the_server(
    client: httpx.AsyncClient, server: ChatServer
) -> None:
    body = await map_label(client, "Social Security No")
    assert body["taxonomy"] == ["PII.Identifier.SSN"]
    assert provenance(body)["method"] == {"PII.Identifier.SSN": "model"}
    assert body["confidence"] == pytest.approx(0.95, abs=1e-6)  # from the token logprobs
    assert provenance(body)["model_fallback"] == {}
    version_info = body["version_info"]
    assert isinstance(version_info, dict)
    assert version_info["model"] == "causal-x@http"
    (sent,) = server.requests
    assert sent["model"] == "causal-x"
    assert sent["messages"] == prompt.messages(NEW_VENDOR, "Social Security No", LABELS)
    assert sent["temperature"] == 0
    assert sent["logprobs"] is True
    assert sent["structured_outputs"] == {"choice": LABELS}  # vLLM guided choice
    assert "authorization" not in server.headers[0]


async def test_rules_answer_first_and_the_server_is_not_asked(
    client: httpx.AsyncClient, server: ChatServer
) -> None:
    payload = {"detector": "presidio", "output": "US_SSN", "tenant_id": "acme"}
    response = await client.post("/map", json=payload)
    assert response.json()["provenance"]["method"] == {"PII.Identifier.SSN": "exact"}
    assert server.requests == []


async def test_answers_are_memoized(client: httpx.AsyncClient, server: ChatServer) -> None:
    for _ in range(3):
        body = await map_label(client, "e-mail addr")
        assert body["taxonomy"] == ["PII.Contact.Email"]
    assert server.labels_asked() == ["e-mail addr"]


async def test_below_threshold_answer_is_a_candidate_not_a_fallback(
    client: httpx.AsyncClient,
) -> None:
    body = await map_label(client, "bodily threat")
    assert body["taxonomy"] == ["OTHER.Unknown"]
    assert provenance(body)["model_candidates"] == {
        "bodily threat": [["HARM.VIOLENCE.Physical", pytest.approx(0.6, abs=1e-6)]]
    }
    assert provenance(body)["model_fallback"] == {}


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        (chat_server.SLOW, "model_timeout"),
        (chat_server.CRASH, "model_error"),
        (chat_server.GARBLED, "model_error"),
        (chat_server.INVENTED, "model_error"),
        (chat_server.NO_LOGPROBS, "model_error"),
    ],
)
async def test_server_failures_fall_back_with_a_reason(
    client: httpx.AsyncClient, server: ChatServer, label: str, reason: str
) -> None:
    body = await map_label(client, label)
    assert body["taxonomy"] == ["OTHER.Unknown"]
    assert provenance(body)["method"] == {"OTHER.Unknown": "unmapped"}
    assert provenance(body)["model_fallback"] == {label: reason}
    assert provenance(body)["unmapped_labels"] == [label]
    assert server.labels_asked() == [label]
    # A failure is not memoized: the next request asks again.
    await map_label(client, label)
    assert server.labels_asked() == [label, label]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting to it is refused


async def test_connection_refused_falls_back_and_opens_the_circuit(
    http_env: pytest.MonkeyPatch, catalog: Catalog
) -> None:
    http_env.setenv("LLAMA_MAPPER_LEARNED__HTTP__URL", f"http://127.0.0.1:{free_port()}")
    http_env.setenv("LLAMA_MAPPER_LEARNED__HTTP__FAILURE_THRESHOLD", "2")
    service = MapperService(load_settings(), catalog)
    app = create_app(service.settings, service=service)
    await upgrade(app.state.runtime.engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mapper") as client:
        for label in ("e-mail addr", "Social Security No", "bodily threat"):
            body = await map_label(client, label)
            assert provenance(body)["model_fallback"] == {label: "model_error"}
        ready = (await client.get("/ready")).json()
        metrics = (await client.get("/metrics")).text
    await app.state.runtime.aclose()
    assert "circuit open" in ready["checks"]["learned_tier"]
    assert 'mapper_model_calls_total{outcome="error"} 2.0' in metrics
    assert 'mapper_model_calls_total{outcome="circuit_open"} 1.0' in metrics


def test_circuit_skips_a_dead_server_until_the_cooldown_passes(
    server: ChatServer, tmp_path: Path
) -> None:
    now = [100.0]
    tier = http_tier_for(server, tmp_path, clock=lambda: now[0])
    outcomes: list[tuple[Outcome, float]] = []
    tier.observer = lambda outcome, seconds: outcomes.append((outcome, seconds))
    assert tier.predict("d", chat_server.CRASH) == Fallback("model_error")
    assert tier.predict("d", chat_server.CRASH) == Fallback("model_error")
    assert tier.circuit.value == "open"
    # Open: not even a label the server would answer goes out.
    assert tier.predict("d", "e-mail addr") == Fallback("model_error")
    assert server.labels_asked() == [chat_server.CRASH, chat_server.CRASH]
    now[0] += 31  # past the cooldown: one probe, which succeeds and closes the circuit
    prediction = tier.predict("d", "e-mail addr")
    assert isinstance(prediction, Prediction)
    assert prediction.label == "PII.Contact.Email"
    assert tier.circuit.value == "closed"
    assert [o for o, _ in outcomes] == ["error", "error", "circuit_open", "ok"]


def http_tier_for(server: ChatServer, tmp_path: Path, **kwargs: Any) -> HttpTier:
    return HttpTier(
        server.url,
        "causal-x",
        LABELS,
        version="causal-x",
        failure_threshold=2,
        cooldown_seconds=30,
        timeout_seconds=0.3,
        **kwargs,
    )


@pytest.mark.parametrize("guided", ["vllm-json", "tgi-json"])
def test_json_modes_constrain_and_score_only_the_label_tokens(
    server: ChatServer, tmp_path: Path, guided: str
) -> None:
    tier = http_tier_for(server, tmp_path, guided=guided)
    prediction = tier.predict("d", "Social Security No")
    assert isinstance(prediction, Prediction)
    assert prediction.label == "PII.Identifier.SSN"
    assert prediction.confidence == pytest.approx(0.95, abs=1e-6)  # scaffolding excluded
    (sent,) = server.requests
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": LABELS}},
        "required": ["label"],
        "additionalProperties": False,
    }
    if guided == "vllm-json":
        assert sent["structured_outputs"] == {"json": schema}
        assert "response_format" not in sent
    else:
        assert sent["response_format"] == {"type": "json", "value": schema}
        assert "structured_outputs" not in sent


def test_unguided_answers_outside_the_labels_are_dropped() -> None:
    def response(content: str) -> dict[str, object]:
        return {
            "choices": [
                {
                    "message": {"role": "assistant", "content": content},
                    "logprobs": {"content": [{"token": content, "logprob": -0.1}]},
                }
            ]
        }

    assert parse_answer(response("OTHER.Unknown"), LABELS, "none").label == "OTHER.Unknown"
    with pytest.raises(WireError) as caught:
        parse_answer(response("Sure! It is an SSN"), LABELS, "none")
    assert "SSN" not in str(caught.value)  # never quotes the model's text


def test_temperature_tempers_the_answer_probability() -> None:
    assert calibrated(math.log(0.9), 1.0) == pytest.approx(0.9)
    assert calibrated(math.log(0.9), 2.0) == pytest.approx(0.75, abs=1e-9)  # sqrt(9)/(3+1)
    assert calibrated(math.log(0.9), 0.5) > 0.9
    assert calibrated(-math.inf, 1.0) == 0.0


def test_card_temperature_is_applied(server: ChatServer, tmp_path: Path) -> None:
    settings = load_settings().learned.model_copy(
        update={"enabled": True, "backend": "openai", "model_dir": model_folder(tmp_path, 2.0)}
    )
    settings.http.url = server.url
    tier = http_tier(settings, load_settings().secrets)
    prediction = tier.predict("d", "Social Security No")
    p = 0.95
    expected = math.sqrt(p) / (math.sqrt(p) + math.sqrt(1 - p))
    assert isinstance(prediction, Prediction)
    assert prediction.confidence == pytest.approx(expected, abs=1e-6)


def test_api_key_comes_from_the_secret_and_is_never_logged(
    server: ChatServer,
    tmp_path: Path,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk-test-" + "9f8e7d6c5b4a" * 2
    monkeypatch.setenv("LLAMA_MAPPER_SECRET_VLLM_API_KEY", key)
    base = load_settings()
    learned = base.learned.model_copy(
        update={"enabled": True, "backend": "openai", "model_dir": model_folder(tmp_path)}
    )
    learned.http.url = server.url
    learned.http.api_key_secret = "vllm_api_key"
    caplog.set_level(logging.DEBUG)
    tier = http_tier(learned, base.secrets)
    assert isinstance(tier.predict("d", "Social Security No"), Prediction)
    assert server.headers[0]["authorization"] == f"Bearer {key}"
    assert tier.predict("d", chat_server.CRASH) == Fallback("model_error")
    assert key not in caplog.text
    # A missing secret is a model_error on the request, not a crash at start-up.
    learned.http.api_key_secret = "missing_secret"
    missing = http_tier(learned, base.secrets)
    assert missing.predict("d", "Social Security No") == Fallback("model_error")
    assert key not in caplog.text


async def test_content_never_reaches_the_server_or_the_logs(
    client: httpx.AsyncClient, server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Not label-shaped (a digit run): the engine never asks the model about it.
    body = await map_label(client, "ssn 078-05-1120")
    assert provenance(body)["unmapped_labels"] == ["<not-label-shaped>"]
    assert server.requests == []
    # Failures are logged with a reason and an exception type, never with the label.
    await map_label(client, chat_server.CRASH)
    await map_label(client, chat_server.INVENTED)
    assert "learned tier fell back" in caplog.text
    records = [r for r in caplog.records if r.name == "llama_mapper.model.http"]
    assert {getattr(r, "reason", None) for r in records} == {"model_error"}
    for record in records:
        rendered = f"{record.getMessage()} {record.__dict__}"
        assert chat_server.CRASH not in rendered
        assert chat_server.INVENTED not in rendered
        assert "NOT.A.Label" not in rendered
    assert "078-05-1120" not in caplog.text


async def test_ready_names_the_served_model(client: httpx.AsyncClient) -> None:
    ready = (await client.get("/ready")).json()
    line = ready["checks"]["learned_tier"]
    assert line.startswith("ok (causal-x@http: model 'causal-x' at http://127.0.0.1:")
    assert "guided vllm-choice, circuit closed" in line


def test_settings_choose_the_backend(http_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    choice = tier_from_settings(load_settings().learned)
    assert choice.tier is not None
    assert choice.tier.version == "causal-x@http"
    http_env.delenv("LLAMA_MAPPER_LEARNED__MODEL_DIR")
    choice = tier_from_settings(load_settings().learned)
    assert choice.tier is None
    assert choice.reason is not None
    assert "learned.http.model and learned.http.labels" in choice.reason
    http_env.setenv("LLAMA_MAPPER_LEARNED__HTTP__MODEL", "served-name")
    http_env.setenv("LLAMA_MAPPER_LEARNED__HTTP__LABELS", orjson.dumps(LABELS).decode())
    choice = tier_from_settings(load_settings().learned)
    assert choice.tier is not None
    assert choice.tier.version == "served-name@http"


def test_a_card_tuned_on_another_prompt_is_refused(
    http_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "model_card.json").write_bytes(
        orjson.dumps(
            {
                "version": "old",
                "kind": "causal",
                "base_model": "tiny",
                "taxonomy_version": "x",
                "data_hash": "0",
                "seed": 0,
                "prompt_version": "0",
            }
        )
    )
    (folder / "labels.json").write_bytes(orjson.dumps(LABELS))
    http_env.setenv("LLAMA_MAPPER_LEARNED__MODEL_DIR", str(folder))
    choice = tier_from_settings(load_settings().learned)
    assert choice.tier is None
    assert "prompt version 0" in str(choice.reason)


def test_metric_outcomes_match_the_tier() -> None:
    from typing import get_args

    assert set(get_args(Outcome)) == set(MODEL_CALL_OUTCOMES)
