"""Known secrets sent through every path reach no sink (issue #4).

Paths: the mapper's API (/map, /map/batch, malformed bodies), the CLI (map, batch), the
orchestrator hook (orch's ``POST /orchestrate`` with the built-in regex-pii and secrets
detectors and the in-process mapper, recording into the same evidence chain), and then
``mapper audit anchor``, ``mapper audit export --to-store`` and ``mapper analytics sync``.

Sinks: the SQLite files or every PostgreSQL table, every ClickHouse table of the embedded
chDB and its files, every object in the object store (local folder, or the real SeaweedFS
S3, read through the store and from outside it), every log record and CLI output, and
every file under state_dir. On SQLite and on the real PostgreSQL.

Each sink is one reader in :data:`SINK_READERS`: it gets the :class:`Run` (what was set
up and captured) and returns ``{sink name: bytes}``. A new sink adds one reader; every
path and every secret is then checked against it too. A failure names the sink and the
kind of secret, never the secret itself.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool
from tests.analytics.support import embedded_target, select
from tests.db.support import postgres_database
from tests.model import chat_server
from tests.model.chat_server import ChatServer
from tests.objects.support import admin_client, bucket, use_s3_settings
from tests.orch.core.conftest import api as orch_api
from tests.orch.core.conftest import bundle_yaml, submit_active
from tests.servicecheck import require
from typer.testing import CliRunner

from detector_orchestration.config import OrchSettings
from detector_orchestration.runtime import build_orch_runtime
from llama_mapper.api.app import create_app
from llama_mapper.audit import EventStore
from llama_mapper.cli.main import app as cli
from llama_mapper.config.settings import load_settings
from llama_mapper.runtime import secret_provider
from llama_mapper.storage.db.engine import SQLITE_FILE, create_engine
from llama_mapper.storage.db.migrate import upgrade
from llama_mapper.storage.db.tenancy import ALL_TENANTS, act_for
from llama_mapper.storage.objects import object_store_from_settings

TENANT = "acme"
MODEL_WITNESS = "brand new category"


def _secrets() -> dict[str, str]:
    """Fresh per run, so a hit can only come from this run's traffic."""
    tag = secrets.token_hex(4)
    return {
        "ssn": f"{secrets.randbelow(600) + 100}-{secrets.randbelow(90) + 10}-"
        f"{secrets.randbelow(9000) + 1000}",
        "email": f"jane.{tag}@example.org",
        "card": "4111" + "".join(str(secrets.randbelow(10)) for _ in range(12)),
        "aws_key": "AKIA" + secrets.token_hex(8).upper(),
        "prose": f"the merger with Quillfeather {tag} closes before the audit",
        "idempotency_key": f"idem-{secrets.token_hex(12)}",
        "header": f"hdr-{secrets.token_hex(12)}",
    }


def _probes(s: dict[str, str]) -> list[dict[str, object]]:
    """Payloads that carry the secrets where content can hide in a detector result."""
    everything = " ".join(s[k] for k in ("ssn", "email", "card", "aws_key", "prose"))
    return [
        {"detector": "presidio", "output": everything, "tenant_id": TENANT},
        {"detector": "presidio", "output": [{"entity_type": everything, "score": 0.9}],
         "tenant_id": TENANT},
        {"detector": "presidio", "output": "US_SSN", "tenant_id": TENANT,
         "metadata": {"note": everything}},
        {"detector": "my-scanner", "output": "|".join(s[k] for k in ("ssn", "email", "card")),
         "tenant_id": TENANT},
        {"detector": "fms-detector", "tenant_id": TENANT, "output": [[{
            "start": 0, "end": 11, "text": everything, "detection": "SocialSecurity",
            "detection_type": "pii", "score": 0.99}]]},
        {"detector": "llama-guard", "output": f"unsafe\nS1\n{everything}", "tenant_id": TENANT},
        {"detector": "openai-moderation", "output": {"results": everything}, "tenant_id": TENANT},
        {"detector": everything, "output": "x", "tenant_id": TENANT},
        {"detector": "presidio", "output": "US_SSN", "tenant_id": TENANT},  # a clean one
        # Unknown to the rules: asked of the learned tier's model server (the witness).
        {"detector": "my-scanner", "output": MODEL_WITNESS, "tenant_id": TENANT},
        # Secret and data scanners' native reports: secrets, lines, authors, paths dropped.
        {"detector": "gitleaks", "tenant_id": TENANT, "output": [{
            "RuleID": "aws-access-token", "Match": everything, "Secret": s["aws_key"],
            "File": s["email"], "Author": s["prose"], "Email": s["email"],
            "Message": everything, "Fingerprint": s["card"]}]},
        {"detector": "gitleaks", "tenant_id": TENANT, "output": [{"Secret": s["aws_key"]}]},
        {"detector": "trufflehog", "tenant_id": TENANT, "output": [{
            "DetectorName": "AWS", "Verified": True, "Raw": s["aws_key"], "RawV2": everything,
            "Redacted": s["aws_key"], "SourceMetadata": {"Data": {"Git": {"email": s["email"]}}},
            "ExtraData": {"note": everything}, "VerificationError": everything}]},
        {"detector": "aws-macie", "tenant_id": TENANT, "output": {"findings": [{
            "classificationDetails": {"result": {"sensitiveData": [{
                "category": "PERSONAL_INFORMATION", "detections": [{
                    "type": "USA_SOCIAL_SECURITY_NUMBER", "count": 1,
                    "occurrences": {"cells": [{"columnName": s["ssn"]}]}}]}]}},
            "description": everything, "resourcesAffected": {"s3Object": {"key": s["email"]}}}]}},
        {"detector": "aws-comprehend", "tenant_id": TENANT, "output": {
            "File": s["email"], "Line": 0, "Entities": [{
                "Type": "SSN", "Score": 0.99, "BeginOffset": 0, "EndOffset": 11,
                "Text": s["ssn"]}]}},
        {"detector": "aws-comprehend", "tenant_id": TENANT, "output": {
            "Classes": [{"Name": "UNSAFE_PROMPT", "Score": 0.99}],
            "Errors": [{"Page": 1, "ErrorMessage": everything}]}},
        {"detector": "aws-comprehend", "tenant_id": TENANT,
         "output": {"Entities": [{"Type": s["card"], "Score": s["ssn"]}]}},
        {"detector": "noseyparker", "tenant_id": TENANT, "output": [{
            "rule_name": "AWS API Key", "rule_text_id": "np.aws.1", "finding_id": s["card"],
            "groups": [everything], "comment": everything, "matches": [{
                "snippet": {"before": everything, "matching": s["aws_key"], "after": s["prose"]},
                "groups": [s["aws_key"]], "blob_id": s["card"], "provenance": [
                    {"kind": "file", "path": s["email"]},
                    {"kind": "git_repo", "repo_path": s["email"], "first_commit": {
                        "blob_path": s["ssn"], "commit_metadata": {
                            "author_email": s["email"], "message": everything}}}]}]}]},
        {"detector": "noseyparker", "tenant_id": TENANT,
         "output": [{"groups": [s["aws_key"]], "snippet": {"matching": everything}}]},
        {"detector": "azure-ai-language-pii", "tenant_id": TENANT, "output": {
            "kind": "PiiEntityRecognitionResults", "results": {"documents": [{
                "id": "1", "redactedText": everything, "entities": [
                    {"text": s["ssn"], "category": "USSocialSecurityNumber", "offset": 0,
                     "length": 11, "confidenceScore": 0.85},
                    {"text": s["email"], "category": "Email", "offset": 12, "length": 25,
                     "confidenceScore": 0.8}],
                "warnings": [{"code": "LongWordsInDocument", "message": everything}]}],
                "errors": [], "modelVersion": "2025-11-01"}}},
        {"detector": "azure-ai-language-pii", "tenant_id": TENANT, "output": {"documents": [{
            "redactedText": everything, "entities": [{"text": s["card"]}]}]}},
    ]  # fmt: skip


def _malformed(s: dict[str, str]) -> list[tuple[bytes, str]]:
    """Bodies that fail before mapping: broken JSON, wrong types, invented keys."""
    return [
        (f'{{"detector": "presidio", "output": "{s["ssn"]} {s["email"]}'.encode(),
         "application/json"),
        (orjson.dumps({"detector": 7, "output": s["prose"], "tenant_id": TENANT}),
         "application/json"),
        (orjson.dumps({s["aws_key"]: s["card"], "detector": "presidio"}), "application/json"),
        (s["prose"].encode(), "text/plain"),
        (orjson.dumps({"requests": s["email"]}), "application/json"),
    ]  # fmt: skip


@dataclass
class Run:
    """What one run set up and captured, for the sink readers."""

    backend: str
    state_dir: Path
    database_url: str | None
    #: The key prefix of this run's objects on the S3 backend; None on the local one.
    s3_prefix: str | None = None
    logs: list[str] = field(default_factory=list)
    #: The learned tier's model server (OpenAI-compatible HTTP backend) and what it received.
    model_server: ChatServer | None = None


SinkReader = Callable[[Run], Awaitable[dict[str, bytes]]]


async def sqlite_files(run: Run) -> dict[str, bytes]:
    """The embedded database as it lies on disk: main file, WAL and shared memory."""
    if run.backend != "sqlite":
        return {}
    return {p.name: p.read_bytes() for p in run.state_dir.glob(f"{SQLITE_FILE}*")}


async def postgres_tables(run: Run) -> dict[str, bytes]:
    """Every row of every table of the test database, as JSON."""
    if run.backend != "postgresql" or run.database_url is None:
        return {}
    engine = create_engine(run.database_url, poolclass=NullPool)
    dumped: dict[str, bytes] = {}
    try:
        async with engine.connect() as connection:
            await act_for(connection, ALL_TENANTS)
            tables = (
                await connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            ).scalars()
            for table in list(tables):
                rows = await connection.execute(
                    text(f'SELECT row_to_json(t)::text FROM "{table}" t')
                )
                dumped[f"pg:{table}"] = "\n".join(rows.scalars()).encode()
    finally:
        await engine.dispose()
    assert "pg:audit_events" in dumped
    return dumped


async def captured_logs(run: Run) -> dict[str, bytes]:
    """Every log record of every logger, and the CLI's stdout and stderr."""
    return {"logs": "\n".join(run.logs).encode()}


async def state_dir_files(run: Run) -> dict[str, bytes]:
    """Every file under state_dir (database, unmapped queue, anchors, secrets, ...)."""
    return {
        str(p.relative_to(run.state_dir)): p.read_bytes()
        for p in sorted(run.state_dir.rglob("*"))
        if p.is_file()
    }


async def clickhouse_tables(run: Run) -> dict[str, bytes]:
    """``SELECT *`` of every table of the embedded chDB that `analytics sync` filled."""
    target = embedded_target(run.state_dir)
    tables = select(
        target,
        "SELECT database, name FROM system.tables WHERE database NOT IN "
        "('system', 'INFORMATION_SCHEMA', 'information_schema')",
    )
    assert ("mapper", "events") in tables, "analytics sync did not create mapper.events"
    return {
        f"ch:{db}.{name}": repr(select(target, f"SELECT * FROM `{db}`.`{name}`")).encode()
        for db, name in tables
    }


async def clickhouse_files(run: Run) -> dict[str, bytes]:
    """The chDB folder as it lies on disk (parts, metadata, logs of the engine)."""
    folder = embedded_target(run.state_dir).folder
    assert folder is not None
    return {f"ch-file:{p.relative_to(folder)}": p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


async def object_store(run: Run) -> dict[str, bytes]:
    """Every object, read through the store and, from outside the code under test, as the
    local folder's files or the S3 bucket's objects under this run's prefix."""
    settings = load_settings()
    objects = object_store_from_settings(settings, secret_provider(settings))
    dumped = {f"object:{info.key}": await objects.get(info.key) for info in await objects.list()}
    if run.s3_prefix is None:
        root = run.state_dir / "objects"
        raw = {f"object-file:{p.relative_to(root)}": p.read_bytes() for p in root.rglob("*")
               if p.is_file()}  # fmt: skip
    else:
        endpoint, name = bucket(locked=True)
        client = admin_client(endpoint)
        listed = client.list_objects_v2(Bucket=name, Prefix=f"{run.s3_prefix}/")
        raw = {f"s3:{item['Key']}": client.get_object(Bucket=name, Key=item["Key"])["Body"].read()
               for item in listed.get("Contents", [])}  # fmt: skip
    assert len(raw) == len(dumped), "the store and its backing storage disagree"
    return {**dumped, **raw}


async def model_server_requests(run: Run) -> dict[str, bytes]:
    """Every request body and header the learned tier sent to its model server."""
    server = run.model_server
    if server is None:
        return {}
    return {
        "model-server": b"\n".join(orjson.dumps(r) for r in [*server.requests, *server.headers])
    }


#: The sinks checked. Append a reader for each new sink.
SINK_READERS: list[SinkReader] = [
    sqlite_files,
    postgres_tables,
    captured_logs,
    state_dir_files,
    clickhouse_tables,
    clickhouse_files,
    object_store,
    model_server_requests,
]


class _Capture(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if record.exc_info:
            self.lines.append(logging.Formatter().formatException(record.exc_info))
        self.lines.append(repr(getattr(record, "__dict__", {})))


@asynccontextmanager
async def _capturing(lines: list[str]) -> AsyncIterator[None]:
    """Capture every record, including loggers that do not propagate to the root."""
    handler = _Capture(lines)
    loggers = [logging.getLogger(), *(
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
    )]  # fmt: skip
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        logging.getLogger().setLevel(previous)


async def _over_http(s: dict[str, str], database: dict[str, str]) -> int:
    """Every probe through /map and /map/batch, plus malformed bodies; returns 200s."""
    settings = load_settings(database=database, idempotency={"enabled": True, "backend": "memory"})
    app = create_app(settings)
    runtime = app.state.runtime
    assert (runtime.writer_process is not None) is (settings.audit.writer == "process")
    await upgrade(runtime.engine)
    ok = 0
    headers = {"Idempotency-Key": s["idempotency_key"], "X-Client-Note": s["header"]}
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
            for index, payload in enumerate(_probes(s)):
                key = {"Idempotency-Key": f"{s['idempotency_key']}-{index}"}
                response = await client.post("/map", json=payload, headers={**headers, **key})
                assert response.status_code < 500, response.text
                ok += response.status_code == 200
            batch = await client.post("/map/batch", json={"requests": _probes(s)}, headers=headers)
            assert batch.status_code == 200, batch.text
            ok += batch.json()["succeeded"]
            for body, content_type in _malformed(s):
                for route in ("/map", "/map/batch"):
                    response = await client.post(
                        route, content=body, headers={**headers, "content-type": content_type}
                    )
                    assert 400 <= response.status_code < 500, response.text
    finally:
        await runtime.aclose()
    return ok


def _over_cli(s: dict[str, str], tmp_path: Path, logs: list[str]) -> None:
    runner = CliRunner()
    everything = " ".join(s[k] for k in ("ssn", "email", "card", "aws_key", "prose"))
    lines = [orjson.dumps(p).decode() for p in _probes(s)]
    lines.append(f'{{"detector": "presidio", "output": "{s["ssn"]}"')  # broken line
    jsonl = tmp_path / "batch.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    runs = [
        ["map", "--detector", "presidio", "--output", everything, "--tenant", TENANT],
        ["map", "--detector", "presidio", "--output", "US_SSN", "--tenant", TENANT],
        ["map", "--detector", "fms-detector", "--tenant", TENANT,
         "--output", orjson.dumps(_probes(s)[4]["output"]).decode()],
        ["map", "--detector", everything, "--output", "x", "--tenant", TENANT],
        ["batch", str(jsonl), "--workers", "1"],
    ]  # fmt: skip
    for args in runs:
        result = runner.invoke(cli, args)
        logs.extend([result.stdout, result.stderr])
        assert result.exit_code in (0, 1, 2), result.output


async def _over_orch(s: dict[str, str], database: dict[str, str]) -> int:
    """The orchestrator hook: the secrets as content to ``POST /orchestrate`` (built-in
    regex-pii and secrets detectors, in-process mapper, the same state_dir and database),
    plus client mistakes that carry them in odd places. Returns the decisions answered."""
    runtime = build_orch_runtime(OrchSettings(), load_settings(database=database))
    await upgrade(runtime.shared.engine)
    content = " ".join(s[k] for k in ("ssn", "email", "card", "aws_key", "prose"))
    request = {"content": content, "tenant_id": TENANT, "policy_bundle": "p"}
    headers = {"Idempotency-Key": f"{s['idempotency_key']}-orch", "X-Client-Note": s["header"]}
    decided = 0
    try:
        await submit_active(runtime, TENANT, bundle_yaml("p", ["regex-pii", "secrets"]))
        async with orch_api(runtime) as http:
            for _ in range(2):  # the second one is a replay or a cache hit
                response = await http.post("/orchestrate", json=request, headers=headers)
                assert response.status_code == 200, response.status_code
                decided += response.json()["decision"] == "block"
            mistakes: list[dict[str, object]] = [
                {**request, "policy_bundle": "missing"},
                {**request, s["aws_key"]: 1},
                {**request, "tenant_id": content},
                {**request, "content_type": content},
                {**request, "required_detectors": [content]},
            ]
            for body in mistakes:
                response = await http.post("/orchestrate", json=body, headers=headers)
                assert 400 <= response.status_code < 500, response.status_code
            broken = f'{{"content": "{content}", "tenant_id": '.encode()
            response = await http.post(
                "/orchestrate", content=broken, headers={"content-type": "application/json"}
            )
            assert 400 <= response.status_code < 500, response.status_code
    finally:
        await runtime.aclose()
    return decided


def _after_traffic(logs: list[str]) -> None:
    """What an operator runs on the evidence afterwards: anchor, export, analytics."""
    runner = CliRunner()
    for args in (
        ["audit", "anchor"],
        ["audit", "export", "-t", TENANT, "--to-store"],
        ["analytics", "sync"],
    ):
        result = runner.invoke(cli, args)
        logs.extend([result.stdout, result.stderr])
        assert result.exit_code == 0, f"mapper {' '.join(args)} failed: {result.exit_code}"


@pytest.fixture
def model_server() -> Iterator[ChatServer]:
    """An OpenAI-compatible model server on loopback for the learned tier's HTTP backend."""
    yield from chat_server.serve()


@pytest.mark.parametrize(
    ("backend", "writer", "objects"),
    [
        ("sqlite", "inline", "local"),
        ("postgresql", "inline", "local"),
        ("sqlite", "process", "local"),
        ("postgresql", "inline", "s3"),
    ],
)
async def test_secrets_reach_no_sink(
    backend: str,
    writer: str,
    objects: str,
    state_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    model_server: ChatServer,
) -> None:
    require(importlib.util.find_spec("chdb") is not None, "chDB (pip install '.[analytics]')")
    s = _secrets()
    monkeypatch.setenv("LLAMA_MAPPER_OBSERVABILITY__LOG_LEVEL", "DEBUG")  # the most logging
    # process: the evidence crosses a pipe to the writer child, whose stderr is captured.
    monkeypatch.setenv("LLAMA_MAPPER_AUDIT__WRITER", writer)
    prefix = use_s3_settings(monkeypatch, locked=True) if objects == "s3" else None
    # The learned tier over HTTP: whatever reaches the model server is a sink too.
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__ENABLED", "true")
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__BACKEND", "openai")
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__HTTP__URL", model_server.url)
    monkeypatch.setenv("LLAMA_MAPPER_LEARNED__HTTP__MODEL", "privacy-probe")
    monkeypatch.setenv(
        "LLAMA_MAPPER_LEARNED__HTTP__LABELS", '["PII.Contact.Email", "OTHER.Unknown"]'
    )
    async with _database(backend) as url:
        database = {"url": url} if url else {}
        run = Run(backend, state_dir, url, prefix, model_server=model_server)
        async with _capturing(run.logs):
            mapped = await _over_http(s, database)
            if url:
                monkeypatch.setenv("LLAMA_MAPPER_DATABASE__URL", url)  # the CLI's database
            await asyncio.to_thread(_over_cli, s, tmp_path, run.logs)
            before_orch = await _event_count(backend, state_dir, url)
            decided = await _over_orch(s, database)
            recorded = await _event_count(backend, state_dir, url)
            await asyncio.to_thread(_after_traffic, run.logs)
        # What the configured handlers rendered to stdout/stderr (the access log too).
        rendered = capfd.readouterr()
        run.logs += [rendered.out, rendered.err]
        assert mapped >= 4, "the probes must produce mappings (and so evidence)"
        assert before_orch >= mapped, "the evidence store must have recorded the mappings"
        assert decided == 2, "orch must have blocked the secrets (so its detectors found them)"
        assert recorded > before_orch, "orch's evidence must land in the same chain"
        sinks: dict[str, bytes] = {}
        for reader in SINK_READERS:
            sinks.update(await reader(run))
        # Witnesses: each sink holds what it should (labels, routes, hashes), so an empty
        # or unread sink cannot pass for a clean one.
        stored = b"".join(v for k, v in sinks.items() if k.startswith(("pg:", SQLITE_FILE)))
        assert b"PII.Identifier.SSN" in stored, "the evidence rows were not read"
        assert b"/map/batch" in sinks["logs"], "the access log was not captured"
        assert MODEL_WITNESS.encode() in sinks["model-server"], "the model server was not read"
        assert b"/orchestrate" in sinks["logs"], "orch's access log was not captured"
        assert any(k.startswith("secrets/") for k in sinks), "state_dir was not read"
        assert b"PII." in sinks["ch:mapper.events"], "the ClickHouse events were not read"
        assert any(k.startswith("ch-file:") and v for k, v in sinks.items()), "no chDB files"
        raw = f"s3:{prefix}/" if prefix else "object-file:"
        for source in ("object:", raw):
            for kind, witness in (("anchors/", b"head_hash"), ("exports/", b"output_fingerprint")):
                found = [v for k, v in sinks.items() if k.startswith(source + kind)]
                assert any(witness in v for v in found), f"no {kind} read from {source}"
        for name, content in sinks.items():
            lowered = content.lower()
            for what, secret in s.items():
                assert secret.lower().encode() not in lowered, f"{what} leaked into {name}"


@asynccontextmanager
async def _database(backend: str) -> AsyncIterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    async with postgres_database() as url:
        yield url


async def _event_count(backend: str, state_dir: Path, url: str | None) -> int:
    engine = create_engine(url or f"sqlite+aiosqlite:///{state_dir / SQLITE_FILE}")
    try:
        store = EventStore(engine)
        assert (await store.verify(TENANT)).ok
        return await store.count(TENANT)
    finally:
        await engine.dispose()
