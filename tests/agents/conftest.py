"""A fake Anthropic Messages API on loopback: a real HTTP server that records what it gets.

The backend under test talks to it through the real SDK and its real HTTP stack, so what is
tested is what goes over the wire: the request body, the auth header, the error shapes.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# How long a stalled reply holds its connection at most; the fixture's teardown releases it
# long before, this only bounds a test that forgot to.
_STALL_LIMIT_S = 30


@dataclass(frozen=True)
class Recorded:
    """One request the fake received: path, headers (lower-cased names, raw bytes) and body."""

    method: str
    path: str
    headers: dict[str, bytes]
    body: Any


@dataclass
class Reply:
    """A scripted answer: status, JSON body and headers, or a stall that never answers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stall: bool = False


def message_body(model: str, text: str) -> dict[str, Any]:
    """A Messages API response body as the real API shapes it."""
    return {
        "id": "msg_fake_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 3},
    }


def error_body(kind: str, message: str) -> dict[str, Any]:
    """A Messages API error body: ``{"type": "error", "error": {"type", "message"}}``."""
    return {"type": "error", "error": {"type": kind, "message": message}}


class FakeMessagesAPI:
    """Answers ``POST /v1/messages`` from a script (default: a text reply); keeps every request."""

    DEFAULT_TEXT = "hello from the fake"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.failures: list[str] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.release = threading.Event()
        self._server = _Server(self, self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def then(self, reply: Reply) -> None:
        """Answer the next request with ``reply`` (scripted replies are used in order)."""
        with self._lock:
            self._script.append(reply)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        model = request.body.get("model", "?") if isinstance(request.body, dict) else "?"
        return Reply(body=message_body(model, self.DEFAULT_TEXT))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so no handler thread outlives its reply.
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                headers = {
                    # http.server decodes header bytes as latin-1; undo it to compare exactly.
                    name.lower(): value.encode("latin-1")
                    for name, value in self.headers.items()
                }
                reply = fake._next(Recorded("POST", self.path, headers, body))
                if self.path != "/v1/messages":
                    reply = Reply(404, error_body("not_found_error", f"no route {self.path}"))
                if reply.stall:
                    fake.release.wait(_STALL_LIMIT_S)
                    return
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep pytest's output to the test's own

        return Handler


class _Server(ThreadingHTTPServer):
    def __init__(self, fake: FakeMessagesAPI, handler: type[BaseHTTPRequestHandler]) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A handler that failed is a test failure, not a traceback lost on stderr.
        self.fake.failures.append(traceback.format_exc())


@pytest.fixture
def messages_api() -> Iterator[FakeMessagesAPI]:
    """A running fake Messages API; stopped, and checked for handler failures, afterwards."""
    fake = FakeMessagesAPI()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.failures == []
