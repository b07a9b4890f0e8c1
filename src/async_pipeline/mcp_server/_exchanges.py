"""What ``mcp --http`` answers itself, before and around the SDK's streamable HTTP app.

- A POST body is read (at most ``MAX_LINE_BYTES``) and triaged as stdio triages a line
  (``_frames``): malformed JSON is ``-32700``, a non-object ``-32600``, each with stdio's
  words and HTTP 400 (413 when too large). The SDK would answer ``-32602`` with a raw
  pydantic dump. A JSON array is refused as a batch on every protocol version, 2025-03-26
  included: one message per POST (see adr/0003).
- An ``MCP-Protocol-Version`` header naming a version nobody speaks is a plain 400.
- An error answered to a request that named no session carries no ``Mcp-Session-Id``: the
  SDK opens a session for every such request and names it even when refusing, though it
  discards the session at once.
- Every exchange in progress is tracked, so a stopping server can end them itself
  (:meth:`Exchanges.close`): an event stream is closed, a request still unanswered gets a
  JSON-RPC error, and none is left to the HTTP server's graceful timeout, which would
  cancel it with a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import mcp_types as types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from async_pipeline.mcp_server._frames import MAX_LINE_BYTES, Batch, Oversized, Reply, triage_body
from async_pipeline.mcp_server._gate import json_error
from async_pipeline.mcp_server._inflight import SHUTTING_DOWN, shutting_down

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SUPPORTED_VERSIONS", "Exchanges"]

SUPPORTED_VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
"""Protocol versions the SDK serves over HTTP: the handshake ones, and the per-request ones."""

_SESSION_HEADER = b"mcp-session-id"
_VERSION_HEADER = b"mcp-protocol-version"


@dataclass(eq=False)
class _Exchange:
    """One HTTP request being served, and how far its response got."""

    method: str
    request_id: types.RequestId | None
    names_session: bool
    cancel: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    status: int | None = None
    event_stream: bool = False
    complete: bool = False

    def watch(self, send: Send) -> Send:
        """``send``, noting what went out and keeping phantom session ids off errors."""

        async def watched(message: Message) -> None:
            # Noted before sending: a cancellation arriving mid-send must not make us
            # start a second response.
            if message["type"] == "http.response.start":
                self.status = message["status"]
                headers = list(message.get("headers", []))
                if not self.names_session and self.status >= 400:
                    headers = [(k, v) for k, v in headers if k.lower() != _SESSION_HEADER]
                    message = {**message, "headers": headers}
                self.event_stream = any(
                    k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in headers
                )
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                self.complete = True
            await send(message)

        return watched

    async def cut_off(self, send: Send) -> None:
        """End this exchange's response, which the server stopped serving mid-way."""
        if self.status is None:
            await json_error(
                send,
                503,
                SHUTTING_DOWN,
                shutting_down("the request was not answered").message,
                request_id=self.request_id,
            )
            return
        if self.complete:
            return
        if self.event_stream and self.request_id is not None:
            # The request's answer was still to come on this stream: say why it will not.
            error = shutting_down("the request was not answered").error
            answer = types.JSONRPCError(jsonrpc="2.0", id=self.request_id, error=error)
            event = b"event: message\r\ndata: " + _dump(answer) + b"\r\n\r\n"
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Exchanges:
    """ASGI middleware: triage POST bodies, check the version header, track every exchange."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._open: set[_Exchange] = set()
        self._changed = anyio.Event()
        self._closing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._closing:
            message = shutting_down("no new requests are taken").message
            await json_error(send, 503, SHUTTING_DOWN, message)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        request_id: types.RequestId | None = None
        if scope["method"] == "POST":
            body = await _read_body(headers, receive)
            if body is None:
                return  # the client went away before sending it all
            verdict = triage_body(body)
            if isinstance(verdict, Reply | Batch):
                await _refuse(send, verdict, oversized=isinstance(body, Oversized))
                return
            assert not isinstance(body, Oversized)  # always refused above
            if isinstance(verdict, types.JSONRPCRequest):
                request_id = verdict.id
            receive = _replay(body, receive)
        version = _header(headers, _VERSION_HEADER)
        if version is not None and version not in SUPPORTED_VERSIONS:
            await json_error(
                send,
                400,
                types.INVALID_REQUEST,
                f"Unsupported protocol version {version!r} in the MCP-Protocol-Version header",
                request_id=request_id,
                data={"supported": list(SUPPORTED_VERSIONS), "requested": version},
            )
            return
        exchange = _Exchange(
            scope["method"], request_id, _header(headers, _SESSION_HEADER) is not None
        )
        self._open.add(exchange)
        try:
            with exchange.cancel:
                await self.app(scope, receive, exchange.watch(send))
        finally:
            self._open.discard(exchange)
            self._changed.set()
            self._changed = anyio.Event()
        if exchange.cancel.cancelled_caught:
            await exchange.cut_off(send)

    def refuse_new(self) -> None:
        """Answer every request from now on with ``503`` and a JSON-RPC error."""
        self._closing = True

    async def close(self, grace: float) -> None:
        """Take no new requests; end the open ones, waiting ``grace`` seconds for answers.

        A POST usually has its answer on the way (a run_job interrupted just before), so
        the POSTs get up to ``grace`` seconds to deliver theirs; then everything still open
        is cut off: event streams (GET), which never end by themselves, are closed, and an
        unanswered request gets an error of its own.
        """
        self._closing = True
        with anyio.move_on_after(grace):
            await self._until(lambda: all(e.method == "GET" for e in self._open))
        for exchange in list(self._open):
            exchange.cancel.cancel()
        with anyio.move_on_after(grace):
            await self._until(lambda: not self._open)

    async def _until(self, done: Callable[[], bool]) -> None:
        while True:
            changed = self._changed
            if done():
                return
            await changed.wait()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in headers if k == name), None)


def _dump(message: types.JSONRPCError) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()


async def _refuse(send: Send, verdict: Reply | Batch, *, oversized: bool) -> None:
    if isinstance(verdict, Batch):
        error = types.ErrorData(
            code=types.INVALID_REQUEST,
            message="Invalid Request: batches are not supported over HTTP; "
            "send one message per POST",
        )
        request_id = None
    else:
        error = verdict.message.error
        request_id = verdict.message.id
    await json_error(
        send, 413 if oversized else 400, error.code, error.message, request_id=request_id
    )


async def _read_body(
    headers: list[tuple[bytes, bytes]], receive: Receive
) -> bytes | Oversized | None:
    """The whole body, or how much there was past the limit, or None on a disconnect."""
    declared = _header(headers, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_LINE_BYTES:
        return Oversized(int(declared))
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_LINE_BYTES:
            return Oversized(len(body))
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app behind us: the body we read, then the client's own events."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
