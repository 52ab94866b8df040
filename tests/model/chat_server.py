"""A real HTTP server on 127.0.0.1 speaking OpenAI's chat-completions response shape.

The HTTP backend's unit tests cannot run vLLM (3.5 GB; ``scripts/e2e_vllm.sh`` does that
once), so this server stands in for it at the wire: it reads the request the mapper sends,
answers from a small deterministic table keyed by the vendor label in the prompt, in the
documented shape (``choices[0].message.content``, ``choices[0].logprobs.content[]`` with
``token``, ``logprob``, ``bytes`` and ``top_logprobs``), and misbehaves on purpose for a few
labels: slow (past the client's timeout), HTTP 500, malformed JSON, a label outside the
valid set. It records every request it receives.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

#: vendor label -> (answer, probability of the answer's tokens)
TABLE: dict[str, tuple[str, float]] = {
    "Social Security No": ("PII.Identifier.SSN", 0.95),
    "e-mail addr": ("PII.Contact.Email", 0.9),
    "bodily threat": ("HARM.VIOLENCE.Physical", 0.6),  # below the 0.8 threshold
}
SLOW = "slow label"
CRASH = "crash label"
GARBLED = "garbled label"
INVENTED = "invented label"
NO_LOGPROBS = "quiet label"
SLOW_SECONDS = 1.0
_LABEL = re.compile(r"^Label: (.*)$", re.MULTILINE)


def _pieces(text: str) -> list[str]:
    """Split like a subword tokenizer would: words and punctuation apart."""
    return re.findall(r"[A-Za-z]+|[^A-Za-z]", text)


def _token(text: str, logprob: float) -> dict[str, Any]:
    alternative = {"token": "~", "logprob": -12.0, "bytes": [126]}
    return {
        "token": text,
        "logprob": logprob,
        "bytes": list(text.encode()),
        "top_logprobs": [
            {"token": text, "logprob": logprob, "bytes": list(text.encode())},
            alternative,
        ],
    }


def completion(body: dict[str, Any], answer: str, probability: float) -> dict[str, Any]:
    """The chat.completion object for ``answer``, its tokens summing to ``log(probability)``."""
    json_mode = "json" in (body.get("structured_outputs") or {}) or bool(
        body.get("response_format")
    )
    label_tokens = _pieces(answer)
    share = math.log(probability) / len(label_tokens)
    tokens = [_token(piece, share) for piece in label_tokens]
    content = answer
    if json_mode:  # scaffolding with a cost of its own, which must not count
        content = orjson.dumps({"label": answer}).decode()
        tokens = [_token('{"', -0.5), _token("label", -0.5), _token('":"', -0.5)]
        tokens += [_token(piece, share) for piece in label_tokens] + [_token('"}', -0.5)]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": {"content": tokens},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": len(tokens), "total_tokens": 100},
    }


@dataclass
class ChatServer:
    server: ThreadingHTTPServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def labels_asked(self) -> list[str]:
        out = []
        for body in self.requests:
            match = _LABEL.search(body["messages"][-1]["content"])
            out.append(match.group(1) if match else "")
        return out


def _handler(state: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = orjson.loads(self.rfile.read(length))
            state.requests.append(body)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path != "/v1/chat/completions":
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            match = _LABEL.search(body["messages"][-1]["content"])
            label = match.group(1) if match else ""
            if label == SLOW:
                time.sleep(SLOW_SECONDS)
            if label == CRASH:
                self._send(500, b'{"error": {"message": "engine died", "type": "server"}}')
                return
            if label == GARBLED:
                self._send(200, b'{"choices": [{"message": ')
                return
            if label == INVENTED:
                self._send(200, orjson.dumps(completion(body, "NOT.A.Label", 0.99)))
                return
            answer, probability = TABLE.get(label, ("OTHER.Unknown", 0.5))
            data = completion(body, answer, probability)
            if label == NO_LOGPROBS:
                data["choices"][0]["logprobs"] = None
            self._send(200, orjson.dumps(data))

    return Handler


def serve() -> Iterator[ChatServer]:
    """Start the server on a free loopback port; stop it when the generator closes."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = ChatServer(httpd)
    httpd.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
