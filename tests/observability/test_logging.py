"""The log pipeline: JSON out, content and secrets never out, correlation ids in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from starlette.responses import PlainTextResponse, Response

from llama_mapper.api.middleware import EdgeMiddleware
from llama_mapper.config.settings import ObservabilitySettings
from llama_mapper.observability import logging as mapper_logging
from llama_mapper.observability.access_log import log_mapping
from llama_mapper.observability.logging import (
    CorrelationMiddleware,
    configure_logging,
    get_logger,
    is_sensitive_key,
    scrub_event,
    scrub_text,
)

PROSE = (
    "Please summarise the attached medical record for patient Jane Roe who was admitted "
    "on Tuesday with chest pain and a history of arrhythmia"
)
EMAIL = "jane.roe@example.com"
CARD = "4111 1111 1111 1111"
CARD_DASHED = "5500-0000-0000-0004"
CARD_PLAIN = "378282246310005"
SSN = "123-45-6789"
API_KEY = "lmk_abcdefghij12_" + "Zx9" * 14 + "Q"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
AWS = "AKIAIOSFODNN7EXAMPLE"
BEARER = "ya29.a0AfH6SMBxQk2VJ8n"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"
DB_PASSWORD = "hunter2hunter2"
SHORT_CONTENT = "kill them all"  # short, but under a content key
LEAKS = [
    PROSE,
    "medical record",
    EMAIL,
    "jane.roe",
    CARD,
    CARD_DASHED,
    CARD_PLAIN,
    SSN,
    API_KEY,
    "Zx9Zx9",
    JWT,
    "eyJhbGci",
    AWS,
    BEARER,
    "MIIEowIBAAKCAQEA7",
    DB_PASSWORD,
    SHORT_CONTENT,
]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging(ObservabilitySettings(log_level="INFO"), stream=stream)
    yield stream
    for handler in list(root.handlers):
        if isinstance(handler, mapper_logging._MapperHandler):
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def assert_no_leak(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked into the log"


def test_structlog_event_that_tries_to_leak_is_scrubbed(log_stream: io.StringIO) -> None:
    log = get_logger("llama_mapper.test")
    log.info(
        "mapped",
        detector="presidio",
        labels=["PII.Identifier.SSN", "OTHER.Unknown"],
        count=2,
        content=SHORT_CONTENT,
        prompt=PROSE,
        note=PROSE,
        contact=EMAIL,
        card=CARD,
        cards=[CARD_DASHED, {"plain": CARD_PLAIN}],
        ssn_like=f"ssn {SSN}",
        detail={
            "nested": {"deeper": {"who": f"mail {EMAIL} now", "key": API_KEY}},
            "items": [JWT, {"header": f"Bearer {BEARER}"}, AWS],
            "apiKey": "anything",
            "pem": PEM,
        },
        dsn=f"postgresql://mapper:{DB_PASSWORD}@db:5432/mapper",
        config=f"password={DB_PASSWORD}",
        content_length=1234,
    )
    output = log_stream.getvalue()
    assert_no_leak(output)
    (line,) = lines(log_stream)
    assert line["event"] == "mapped"
    assert line["level"] == "info"
    assert line["logger"] == "llama_mapper.test"
    assert line["timestamp"].endswith("Z")
    # Metadata survives: the scrubber is surgical, not a blanket.
    assert line["detector"] == "presidio"
    assert line["labels"] == ["PII.Identifier.SSN", "OTHER.Unknown"]
    assert line["count"] == 2
    assert line["content_length"] == 1234
    assert line["content"] == "[scrubbed]"
    assert line["note"].startswith("[scrubbed: ")
    assert line["contact"] == "[redacted:email]"
    assert line["detail"]["nested"]["deeper"]["who"] == "mail [redacted:email] now"
    assert line["detail"]["apiKey"] == "[scrubbed]"
    assert line["dsn"] == "postgresql://[redacted:credentials]@db:5432/mapper"


def test_event_message_itself_is_checked(log_stream: io.StringIO) -> None:
    log = get_logger("llama_mapper.test")
    log.info(f"user {EMAIL} paid with {CARD}")
    log.warning(PROSE)
    log.error("first line\nsecond line")
    output = log_stream.getvalue()
    assert_no_leak(output)
    first, second, third = lines(log_stream)
    assert first["event"] == "user [redacted:email] paid with [redacted:card]"
    assert second["event"] == f"[scrubbed: {len(PROSE)} chars]"
    assert third["event"] == "[scrubbed: 22 chars]"


def test_stdlib_records_go_through_the_same_pipeline(log_stream: io.StringIO) -> None:
    logging.getLogger("llama_mapper.engine").warning("key %s rejected for %s", API_KEY, EMAIL)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("some.library").error(PROSE)
    output = log_stream.getvalue()
    assert_no_leak(output)
    first, second, third = lines(log_stream)
    assert first == {
        "event": "key [redacted:api_key] rejected for [redacted:email]",
        "logger": "llama_mapper.engine",
        "level": "warning",
        "timestamp": first["timestamp"],
    }
    assert second["event"] == "Started server process [42]"
    assert second["logger"] == "uvicorn.error"
    assert third["event"].startswith("[scrubbed: ")


def test_exceptions_keep_frames_but_not_content(log_stream: io.StringIO) -> None:
    def parse(text: str) -> None:
        raise ValueError(f"could not parse {text}")

    try:
        parse(PROSE)
    except ValueError:
        get_logger("llama_mapper.test").exception("parse failed")
    try:
        parse(EMAIL)
    except ValueError:
        logging.getLogger("llama_mapper.test").exception("stdlib parse failed")
    output = log_stream.getvalue()
    assert_no_leak(output)
    first, second = lines(log_stream)
    (exc,) = first["exception"]
    assert exc["exc_type"] == "ValueError"
    assert exc["exc_value"].startswith("[scrubbed: ")
    assert any(frame["name"] == "parse" for frame in exc["frames"])
    assert "locals" not in json.dumps(first)
    assert second["exception"][0]["exc_value"] == "could not parse [redacted:email]"


def test_access_log_lines_become_fields_and_keep_their_metadata(
    log_stream: io.StringIO,
) -> None:
    response = {
        "taxonomy": ["PII.Identifier.SSN", "OTHER.Unknown"],
        "confidence": 0.5,
        "provenance": {
            "tenant_id": "acme",
            "detector": "presidio",
            "unmapped_labels": ["ZODIAC_SIGN"],
        },
    }
    log_mapping(
        route="/map",
        request_id="0123456789abcdef0123456789abcdef",
        status=200,
        duration_ms=1.25,
        privacy_mode=True,
        response=response,
    )
    (line,) = lines(log_stream)
    assert line["event"] == "mapping"
    assert line["logger"] == "llama_mapper.access"
    assert line["route"] == "/map"
    assert line["labels"] == ["PII.Identifier.SSN", "OTHER.Unknown"]
    assert line["tenant_id"] == "acme"
    assert line["unmapped"] == 1


def test_level_filtering_and_console_format() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    try:
        configure_logging(
            ObservabilitySettings(log_level="WARNING", log_format="console"), stream=stream
        )
        log = get_logger("llama_mapper.test")
        log.info("not shown")
        logging.getLogger("llama_mapper.x").info("not shown either")
        log.warning("shown", contact=EMAIL, content=SHORT_CONTENT)
        try:
            raise RuntimeError(EMAIL)
        except RuntimeError:
            log.exception("boom")
    finally:
        for handler in list(root.handlers):
            if isinstance(handler, mapper_logging._MapperHandler):
                root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()
    output = stream.getvalue()
    assert "not shown" not in output
    assert "shown" in output
    assert "RuntimeError: [redacted:email]" in output
    assert_no_leak(output)


def test_configure_twice_installs_one_handler(log_stream: io.StringIO) -> None:
    configure_logging(ObservabilitySettings(log_level="INFO"), stream=log_stream)
    handlers = [
        h for h in logging.getLogger().handlers if isinstance(h, mapper_logging._MapperHandler)
    ]
    assert len(handlers) == 1
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(ObservabilitySettings(log_level="LOUD"))


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("content", True),
        ("llm_output", True),
        ("apiKey", True),
        ("api_key", True),
        ("Authorization", True),
        ("request_body", True),
        ("matched_text", True),
        ("db_password", True),
        ("content_length", False),
        ("text_id", False),
        ("context", False),
        ("token_count", False),
        ("request_id", False),
        ("detector", False),
        ("idempotency_key", False),
    ],
)
def test_sensitive_key_names(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_scrub_text_rules() -> None:
    assert scrub_text("PII.Identifier.SSN") == "PII.Identifier.SSN"
    assert scrub_text("x" * 257) == "[scrubbed: 257 chars]"
    assert scrub_text(" ".join(["w"] * 17)) == "[scrubbed: 33 chars]"
    assert scrub_text("a\nb") == "[scrubbed: 3 chars]"
    assert scrub_text(f"id {SSN}") == "id [redacted:ssn]"
    assert scrub_text(f"key {AWS}") == "key [redacted:aws_key]"
    assert scrub_text(f"auth Bearer {BEARER}") == "auth Bearer [redacted:token]"
    assert scrub_text(JWT) == "[redacted:jwt]"
    # Identifiers that merely contain digits stay readable.
    assert scrub_text("0123456789abcdef0123456789abcdef") == "0123456789abcdef0123456789abcdef"
    assert scrub_text("2026-11-27T14:47:54.132Z") == "2026-11-27T14:47:54.132Z"


def test_scrubber_never_raises() -> None:
    class Exploding:
        def model_dump(self, **_: Any) -> Any:
            raise RuntimeError("boom")

    out = scrub_event(None, "info", {"event": "x", "level": "info", "thing": Exploding()})
    assert out == {"event": "[scrubbed: scrubber failed]", "level": "info"}

    class Opaque:
        def __repr__(self) -> str:
            return PROSE

    when = datetime(2026, 1, 2, tzinfo=UTC)
    event = {"event": "x", "obj": Opaque(), "raw": b"bytes here", "when": when, "path": Path("/a")}
    out = scrub_event(None, "info", event)
    assert out["obj"] == "<Opaque>"
    assert out["when"] == "2026-01-02 00:00:00+00:00"
    assert out["path"] == "/a"
    assert out["raw"] == "[scrubbed: 10 bytes]"
    deep: dict[str, Any] = {"v": 1}
    for _ in range(10):
        deep = {"d": deep}
    assert "too deep" in json.dumps(scrub_event(None, "info", {"event": "x", "deep": deep}))


# -- correlation ---------------------------------------------------------------------


def correlated_app(*, correlation_outside: bool) -> FastAPI:
    app = FastAPI()

    @app.get("/work")
    async def work() -> Response:
        get_logger("llama_mapper.test").info("working")
        logging.getLogger("llama_mapper.stdlib").info("stdlib working")
        return PlainTextResponse("ok")

    if correlation_outside:
        app.add_middleware(EdgeMiddleware, max_body_bytes=1024)
        app.add_middleware(CorrelationMiddleware)
    else:  # the recommended order: request id assigned first
        app.add_middleware(CorrelationMiddleware)
        app.add_middleware(EdgeMiddleware, max_body_bytes=1024)
    return app


@pytest.mark.parametrize("correlation_outside", [False, True])
async def test_correlation_id_bound_and_echoed(
    log_stream: io.StringIO, correlation_outside: bool
) -> None:
    app = correlated_app(correlation_outside=correlation_outside)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/work", headers={"X-Correlation-ID": "trace-42.a_b"})
    assert response.headers["x-correlation-id"] == "trace-42.a_b"
    request_id = response.headers["x-request-id"]
    structlog_line, stdlib_line = lines(log_stream)
    for line in (structlog_line, stdlib_line):
        assert line["correlation_id"] == "trace-42.a_b"
        assert line["request_id"] == request_id
    # Nothing stays bound once the request is over.
    assert structlog.contextvars.get_contextvars() == {}


@pytest.mark.parametrize("header", ["has space", "x" * 65, EMAIL, ""])
async def test_invalid_correlation_id_is_replaced(log_stream: io.StringIO, header: str) -> None:
    app = correlated_app(correlation_outside=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/work", headers={"X-Correlation-ID": header})
        second = await http.get("/work")
    echoed = response.headers["x-correlation-id"]
    assert echoed != header
    assert len(echoed) == 32
    int(echoed, 16)
    assert second.headers["x-correlation-id"] != echoed
    assert EMAIL not in log_stream.getvalue()
    assert lines(log_stream)[0]["correlation_id"] == echoed
