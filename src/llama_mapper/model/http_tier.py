"""The learned tier served by an OpenAI-compatible HTTP server (vLLM, TGI's Messages API).

The mapper must answer even when the model server does not: every failure (timeout,
refused connection, 5xx, a body of the wrong shape, an answer outside the valid labels)
becomes a :class:`~llama_mapper.mapping.learned.Fallback` with reason ``model_timeout`` or
``model_error``, which the engine reports in ``provenance.model_fallback`` while mapping the
label as rules-only. A circuit breaker (orch's, shared code) stops asking a server that
keeps failing for ``cooldown_seconds``, so a dead server costs one timeout per cooldown,
not one per request.

Blocking by design: the engine calls ``predict`` synchronously. The API runs mappings that
may reach this tier in a worker thread (:attr:`HttpTier.blocking`), so a slow server
never stalls the event loop; the client and the breaker are thread-safe.

Only label-shaped vendor labels reach ``predict`` (the engine gates them), so a label is
all the server ever sees; logs and metrics carry reasons, status codes and exception
types, never the label or the model's text. Answers are memoized per ``(detector,
label)`` for the tier's model version, like the in-process tier.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

import httpx
import orjson

from llama_mapper.mapping.learned import Fallback, FallbackReason, Prediction
from llama_mapper.model.memo import AnswerMemo
from llama_mapper.model.openai_wire import GuidedMode, WireError, calibrated, parse_answer
from llama_mapper.model.openai_wire import request_body as build_request
from llama_mapper.resilience.breaker import BreakerState, CircuitBreaker
from llama_mapper.secrets import SecretError

logger = logging.getLogger("llama_mapper.model.http")

#: Metric outcomes (a closed set): answered, or why not.
Outcome = Literal["ok", "timeout", "error", "invalid_answer", "circuit_open"]
Observer = Callable[[Outcome, float], None]
_REASONS: dict[Outcome, FallbackReason] = {
    "timeout": "model_timeout",
    "error": "model_error",
    "invalid_answer": "model_error",
    "circuit_open": "model_error",
}
CHAT_PATH = "/v1/chat/completions"


class HttpTier:
    """A :class:`~llama_mapper.mapping.learned.LearnedTier` asking a chat-completions server."""

    #: The API runs mappings in a worker thread when the tier blocks on I/O.
    blocking = True

    def __init__(
        self,
        url: str,
        model: str,
        labels: Sequence[str],
        *,
        version: str,
        temperature: float = 1.0,
        guided: GuidedMode = "vllm-choice",
        timeout_seconds: float = 2.0,
        api_key: Callable[[], str] | None = None,
        max_tokens: int = 32,
        top_logprobs: int = 5,
        cache_size: int = 10_000,
        failure_threshold: int = 3,
        cooldown_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not labels:
            raise ValueError("the HTTP tier needs the model's valid labels")
        self.url = url.rstrip("/")
        self.model = model
        self.labels = tuple(labels)
        #: ``<model version>@http``: names the served model in ``version_info.model``.
        self.version = f"{version}@http"
        self.temperature = temperature
        self.guided: GuidedMode = guided
        self._api_key = api_key
        self._max_tokens = max_tokens
        self._top_logprobs = top_logprobs
        self._client = httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(timeout_seconds), transport=transport
        )
        self._breaker = CircuitBreaker(failure_threshold, cooldown_seconds, clock)
        self._breaker_lock = threading.Lock()
        self._memo = AnswerMemo(cache_size)
        self._clock = clock
        #: Called with each call's outcome and seconds (``Metrics.observe_model_call``).
        self.observer: Observer | None = None
        self.last_outcome: Outcome | None = None

    @property
    def hits(self) -> int:
        return self._memo.hits

    @property
    def misses(self) -> int:
        """Labels the server was asked about (or would have been, with the circuit open)."""
        return self._memo.misses

    @property
    def circuit(self) -> BreakerState:
        with self._breaker_lock:
            return self._breaker.state

    @property
    def status(self) -> str:
        """One line for ``/ready``: the served model, the server, the circuit's state."""
        return (
            f"ok ({self.version}: model {self.model!r} at {self.url}, guided {self.guided}, "
            f"circuit {self.circuit.value})"
        )

    def close(self) -> None:
        self._client.close()

    def predict(self, detector: str, label: str) -> Prediction | Fallback | None:
        key = (detector, label)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        with self._breaker_lock:
            allowed = self._breaker.allow()
        if not allowed:
            return self._fail("circuit_open", 0.0, None)
        started = self._clock()
        try:
            prediction = self._ask(detector, label)
        except httpx.TimeoutException as exc:
            return self._fail("timeout", self._clock() - started, exc)
        except (httpx.HTTPError, SecretError, orjson.JSONDecodeError) as exc:
            return self._fail("error", self._clock() - started, exc)
        except WireError as exc:
            # The server is up and answered: only this answer is unusable.
            with self._breaker_lock:
                self._breaker.record_success()
            return self._fail("invalid_answer", self._clock() - started, exc, count=False)
        with self._breaker_lock:
            self._breaker.record_success()
        self._observe("ok", self._clock() - started)
        self._memo.put(key, prediction)
        return prediction

    def _ask(self, detector: str, label: str) -> Prediction:
        body = build_request(
            self.model,
            detector,
            label,
            self.labels,
            guided=self.guided,
            max_tokens=self._max_tokens,
            top_logprobs=self._top_logprobs,
        )
        headers = {"content-type": "application/json"}
        if self._api_key is not None:
            headers["authorization"] = f"Bearer {self._api_key()}"
        response = self._client.post(CHAT_PATH, content=orjson.dumps(body), headers=headers)
        response.raise_for_status()
        answer = parse_answer(orjson.loads(response.content), self.labels, self.guided)
        confidence = calibrated(answer.logprob, self.temperature)
        return Prediction(answer.label, round(confidence, 6))

    def _fail(
        self, outcome: Outcome, seconds: float, exc: Exception | None, *, count: bool = True
    ) -> Fallback:
        if count and outcome != "circuit_open":
            with self._breaker_lock:
                self._breaker.record_failure()
        self._observe(outcome, seconds)
        if exc is not None:
            # The exception's type and, for HTTP errors, the status: never a label or text.
            status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
            logger.warning(
                "learned tier fell back",
                extra={
                    "reason": _REASONS[outcome],
                    "outcome": outcome,
                    "error_type": type(exc).__name__,
                    "http_status": status,
                    "model": self.version,
                },
            )
        return Fallback(_REASONS[outcome])

    def _observe(self, outcome: Outcome, seconds: float) -> None:
        self.last_outcome = outcome
        if self.observer is not None:
            self.observer(outcome, seconds)
