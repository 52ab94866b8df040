"""Structured JSON logs that cannot carry request content, even by mistake.

The mapper's promise is that analysed text never leaves the client. Access lines are
built from metadata only (:mod:`llama_mapper.observability.access_log`), but a developer
can still write ``log.info("mapped", output=payload.output)`` one day. :func:`scrub_event`
runs last before rendering, on structlog events and on stdlib records alike, and removes
anything that looks like content or a secret: values under content-ish or secret-ish keys,
prose-shaped strings, and well-known secret/PII patterns inside short strings.

:func:`configure_logging` wires structlog and the stdlib (uvicorn, ``llama_mapper.*``)
through one processor chain, so there is a single place where this is enforced.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from datetime import date, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import IO, Any

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.types import EventDict, Processor, WrappedLogger

from llama_mapper.config.settings import ObservabilitySettings
from llama_mapper.observability.tracing import tracing_enabled

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CORRELATION_HEADER = b"x-correlation-id"
_CORRELATION_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
#: Loggers that would otherwise print with their own handlers and bypass the scrubber.
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "llama_mapper")
ACCESS_LOGGER = "llama_mapper.access"
#: Libraries that log every outgoing request (with its URL) at INFO: quiet unless DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore")

SCRUBBED = "[scrubbed]"
MAX_CHARS = 256
MAX_WORDS = 16
_MAX_DEPTH = 6
_MAX_ITEMS = 64
#: structlog's own bookkeeping keys, never content.
_META_KEYS = frozenset({"level", "logger", "timestamp", "_record", "_from_structlog"})

# -- the privacy processor -------------------------------------------------------------

#: A key holding any of these words holds content or a credential, whatever its value.
_SENSITIVE_WORDS = frozenset(
    {
        "content", "contents", "text", "texts", "prompt", "prompts", "completion",
        "completions", "output", "outputs", "input", "inputs", "body", "bodies", "payload",
        "payloads", "match", "matches", "matched", "transcript", "document", "documents",
        "messages", "authorization", "password", "passwd", "pwd", "passphrase", "secret",
        "secrets", "token", "tokens", "cookie", "cookies", "credential", "credentials",
        "apikey", "pepper",
    }
)  # fmt: skip
_SENSITIVE_PAIRS = frozenset(
    {"api_key", "access_key", "private_key", "secret_key", "session_key", "message_body"}
)
#: ...unless the key names a measurement or an identifier of that thing.
_SAFE_SUFFIXES = frozenset(
    {
        "length", "len", "count", "chars", "bytes", "size", "kb", "ms", "seconds", "id",
        "ids", "name", "names", "type", "types", "present", "enabled", "fingerprint",
        "hmac", "sha256",
    }
)  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


def _rule(kind: str, pattern: str, *triggers: str) -> tuple[tuple[str, ...], re.Pattern[str]]:
    return triggers, re.compile(f"(?P<{kind}>{pattern})", re.DOTALL)


#: Secret and PII shapes, masked in order (a bearer token before the key inside it). Each
#: runs only when one of its trigger substrings occurs in the lower-cased value: a full
#: regex scan of every logged string would cost more than the log line is worth.
_RULES = (
    _rule("pem", r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|$)", "-----begin"),
    _rule("bearer", r"\b(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}", "bearer"),
    _rule("jwt", r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", "eyj"),
    _rule(
        "assignment",
        r"\b(?i:password|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*[^\s,;&]+",
        "pass", "pwd", "secret", "token", "api",
    ),
    _rule("credentials", r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)", "://"),
    _rule(
        "api_key",
        r"\blmk_[A-Za-z0-9_-]{4,}|\bsk-[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}"
        r"|\bxox[abprs]-[A-Za-z0-9-]{10,}",
        "lmk_", "sk-", "gh", "xox",
    ),
    _rule("aws_key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", "akia", "asia"),
    _rule("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "@"),
)  # fmt: skip
#: Numbers get one cheap probe (a run of 9+ digits and separators) before the two
#: number-shaped rules run.
_DIGIT_RUN = re.compile(r"\d[\d -]{7,}\d")
_NUMBER_RULES = (
    re.compile(r"(?P<ssn>(?<![\w-])\d{3}[- ]\d{2}[- ]\d{4}(?![\w-]))"),
    re.compile(r"(?P<card>(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-]))"),
)


def mask_secrets(value: str) -> str:
    """Replace secret- and PII-shaped substrings by ``[redacted:<kind>]``."""
    lowered = value.lower()
    for triggers, pattern in _RULES:
        for trigger in triggers:  # plain loops: a generator per rule costs more than the test
            if trigger in lowered:
                value = pattern.sub(_mask, value)
                break
    if _DIGIT_RUN.search(value):
        for pattern in _NUMBER_RULES:
            value = pattern.sub(_mask, value)
    return value


def _mask(match: re.Match[str]) -> str:
    kind = match.lastgroup or "secret"
    if kind == "bearer":
        return match.group(0).split(None, 1)[0] + " [redacted:token]"
    if kind == "assignment":
        return re.split(r"\s*[=:]", match.group(0), maxsplit=1)[0] + "=[redacted]"
    return f"[redacted:{kind}]"


@functools.lru_cache(maxsize=2048)
def is_sensitive_key(key: str) -> bool:
    """Whether a key's name says its value is content or a credential.

    ``content``, ``llm_output`` and ``apiKey`` are; ``content_length``, ``text_id`` and
    ``context`` are not (a measurement or identifier of a thing is not the thing).
    """
    words = _WORD.findall(_CAMEL.sub("_", key).lower())
    if not words or words[-1] in _SAFE_SUFFIXES:
        return False
    if any(word in _SENSITIVE_WORDS for word in words):
        return True
    return any(f"{a}_{b}" in _SENSITIVE_PAIRS for a, b in itertools.pairwise(words))


def scrub_text(value: str) -> str:
    """Prose-shaped strings go entirely; short ones keep everything but secrets and PII."""
    size = len(value)
    if size > MAX_CHARS or "\n" in value or "\r" in value or len(value.split()) > MAX_WORDS:
        return f"[scrubbed: {size} chars]"
    return mask_secrets(value)


_TEXTUAL = (date, time, timedelta, uuid.UUID, PurePath, Decimal, Enum)


def _scrub_value(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_DEPTH:
        return "[scrubbed: too deep]"
    if isinstance(value, Mapping):
        return _scrub_mapping(value, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        out = [_scrub_value(item, depth + 1) for item in items[:_MAX_ITEMS]]
        if len(items) > _MAX_ITEMS:
            out.append(f"[... {len(items) - _MAX_ITEMS} more]")
        return out
    if isinstance(value, BaseException):
        return scrub_text(f"{type(value).__name__}: {value}")
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model: its fields, each scrubbed by name and value
        return _scrub_value(dump(mode="json"), depth)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"[scrubbed: {len(value)} bytes]"
    # Dates, UUIDs, paths, enums read fine as text; an arbitrary object's repr might hold
    # anything, so it is only named.
    if isinstance(value, _TEXTUAL):
        return scrub_text(str(value))
    return f"<{type(value).__name__}>"


def _scrub_mapping(data: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count, (raw_key, value) in enumerate(data.items()):
        if count >= _MAX_ITEMS:
            out["[more]"] = f"[... {len(data) - _MAX_ITEMS} more keys]"
            break
        key = scrub_text(raw_key if isinstance(raw_key, str) else str(raw_key))
        if value is not None and not isinstance(value, bool) and is_sensitive_key(key):
            out[key] = SCRUBBED
        else:
            out[key] = _scrub_value(value, depth)
    return out


def scrub_event(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last line of defence before an event is rendered.

    Never raises: a scrubber that fails must fail closed, with an event that says so
    rather than the original one.
    """
    try:
        out: dict[str, Any] = {}
        for key, value in event_dict.items():
            if key in _META_KEYS:
                out[key] = value
            elif key == "event":
                out[key] = _scrub_value(value)
            elif key == "stack" and isinstance(value, str):
                # stack_info is code locations only: keep its lines, mask secrets.
                out[key] = mask_secrets(value)
            elif value is not None and not isinstance(value, bool) and is_sensitive_key(key):
                out[key] = SCRUBBED
            else:
                out[key] = _scrub_value(value)
        return out
    except Exception:  # see docstring
        safe = {key: event_dict[key] for key in _META_KEYS if key in event_dict}
        return {**safe, "event": "[scrubbed: scrubber failed]"}


# -- request context -------------------------------------------------------------------

_request_state: ContextVar[MutableMapping[str, Any] | None] = ContextVar(
    "llama_mapper_request_state", default=None
)


def add_request_context(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Adds the request id even when it was assigned after the context was bound.

    :class:`CorrelationMiddleware` may sit outside the middleware that assigns request ids;
    it publishes the request's ``scope["state"]`` and this reads it at log time.
    """
    state = _request_state.get()
    if state is not None:
        for key in ("request_id", "correlation_id"):
            value = state.get(key)
            if isinstance(value, str):
                event_dict.setdefault(key, value)
    return event_dict


def add_trace_ids(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Adds ``trace_id``/``span_id`` of the current span, so a log line leads to its trace.

    Costs one flag check while tracing is off.
    """
    if not tracing_enabled():
        return event_dict
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


class CorrelationMiddleware:
    """Binds ``correlation_id`` and ``request_id`` to every log line of a request.

    The correlation id comes from ``X-Correlation-ID`` when it is a short safe token (a
    header is client data and ends up in every line), else a fresh uuid4; it is echoed
    on the response and stored in ``scope["state"]["correlation_id"]``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = b""
        for name, value in scope.get("headers", ()):
            if name == CORRELATION_HEADER:
                raw = value
                break
        correlation_id = raw.decode("ascii") if _CORRELATION_ID.fullmatch(raw) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["correlation_id"] = correlation_id
        bound = {"correlation_id": correlation_id}
        request_id = state.get("request_id")
        if isinstance(request_id, str):
            bound["request_id"] = request_id
        tokens = structlog.contextvars.bind_contextvars(**bound)
        state_token = _request_state.set(state)
        echoed = correlation_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == CORRELATION_HEADER for name, _ in headers):
                    headers.append((CORRELATION_HEADER, echoed))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _request_state.reset(state_token)
            structlog.contextvars.reset_contextvars(**tokens)


# -- configuration ---------------------------------------------------------------------


def lift_json_message(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Turns a stdlib record whose message is a JSON object into fields.

    The access log writes one JSON object per line; as a single string it would be
    scrubbed whole (too long), as fields each value is checked on its own and kept.
    """
    event = event_dict.get("event")
    if isinstance(event, str) and event.startswith("{") and len(event) <= 16384:
        try:
            data = orjson.loads(event)
        except orjson.JSONDecodeError:
            return event_dict
        if isinstance(data, dict) and isinstance(data.get("event"), str):
            extra = {k: v for k, v in event_dict.items() if k != "event"}
            return {**data, **extra}
    return event_dict


class _MapperHandler(logging.StreamHandler[IO[str]]):
    """Marks the handler :func:`configure_logging` installed, so a second call replaces it."""


def _level(name: str) -> int:
    level = logging.getLevelName(name.strip().upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {name!r}")
    return level


def _exception_as_text(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """The console renderer wants a traceback string; build it from the scrubbed frames."""
    chain = event_dict.get("exception")
    if isinstance(chain, list):
        lines: list[str] = []
        for exc in reversed(chain):
            if not isinstance(exc, dict):
                continue
            lines.append("Traceback (most recent call last):")
            for frame in exc.get("frames", ()):
                if isinstance(frame, dict):
                    lines.append(
                        f'  File "{frame.get("filename")}", line {frame.get("lineno")}, '
                        f"in {frame.get('name')}"
                    )
            lines.append(f"{exc.get('exc_type')}: {exc.get('exc_value')}")
        event_dict["exception"] = "\n".join(lines)
    return event_dict


def configure_logging(settings: ObservabilitySettings, *, stream: IO[str] | None = None) -> None:
    """Route structlog and stdlib logging through one scrubbing, rendering chain.

    Safe to call again (tests, reloads): the handler it installed before is replaced.
    ``stream`` defaults to stderr, where uvicorn logs too.
    """
    level = _level(settings.log_level)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_context,
        add_trace_ids,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        # Frames as data, without locals: values are what must not be logged.
        structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False, use_rich=False)
        ),
    ]
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    final.append(scrub_event)
    if settings.log_format == "console":
        target = stream or sys.stderr
        final += [_exception_as_text, structlog.dev.ConsoleRenderer(colors=target.isatty())]
    else:
        final.append(structlog.processors.JSONRenderer())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[lift_json_message, *shared], processors=final
    )
    handler = _MapperHandler(stream or sys.stderr)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _MapperHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
        routed.setLevel(logging.NOTSET)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if access.handlers:  # enabled by the server: route it too; disabled stays disabled
        access.handlers.clear()
        access.propagate = True
    # Our own access log is one line per request, built only from metadata fields by
    # access_log.log_mapping, which renders the JSON itself. It skips the general chain:
    # that chain costs more than mapping the request does.
    mapping_log = logging.getLogger(ACCESS_LOGGER)
    direct = _MapperHandler(stream or sys.stderr)
    direct.setFormatter(logging.Formatter("%(message)s"))
    mapping_log.handlers = [direct]
    mapping_log.propagate = False
    mapping_log.setLevel(level)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str = "llama_mapper") -> structlog.stdlib.BoundLogger:
    """A structlog logger under ``llama_mapper`` (so level and routing apply to it)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
