"""Who may talk to ``mcp --http``: a bearer token, and requests from this machine's pages only.

Checked in this order, before the SDK sees a request (see adr/0003):

1. With ``--token-env``: ``Authorization: Bearer <token>`` (the scheme in any case, RFC
   7235), else 401. First, so an unauthenticated caller learns nothing about the rest.
2. On a loopback bind: the ``Host`` header must name loopback (an IP literal or
   ``localhost``), else 421. A page whose DNS name was rebound to 127.0.0.1 sends its own
   name here. A non-loopback bind is reachable under names we cannot know, so there the
   token (required for such binds) stands in for this check.
3. On every bind: an ``Origin`` header, when present, must be a page served from this
   machine (``http(s)://`` a loopback address or ``localhost``, any port), else 403.
   Browsers always send one on cross-origin requests; hosts and other non-browser
   clients send none and pass.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

import mcp_types as types

from async_pipeline.mcp_server._address import loopback_host_header, loopback_origin

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["Gate", "json_error"]


async def json_error(
    send: Send,
    status: int,
    code: int,
    message: str,
    *,
    request_id: types.RequestId | None = None,
    data: object = None,
) -> None:
    """Answer with one JSON-RPC error object (``id`` null unless the request's is known)."""
    error = types.ErrorData(code=code, message=message, **({} if data is None else {"data": data}))
    body = types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error)
    await _respond(send, status, body.model_dump_json(by_alias=True, exclude_unset=True).encode())


async def _respond(
    send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


_UNAUTHORIZED = b'{"error":"unauthorized","error_description":"a valid bearer token is required"}'


class Gate:
    """ASGI middleware refusing requests that fail the token, Host or Origin check."""

    def __init__(self, app: ASGIApp, *, token: str | None, check_host: bool) -> None:
        self.app = app
        self._token = None if token is None else token.encode()
        self._check_host = check_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if self._token is not None and not self._authorized(headers):
            # The OAuth-style body (RFC 6750) MCP clients expect with a 401, not JSON-RPC.
            challenge = (b"www-authenticate", b'Bearer realm="async-pipeline"')
            await _respond(send, 401, _UNAUTHORIZED, [challenge])
            return
        if self._check_host and not loopback_host_header(_header(headers, b"host")):
            await json_error(send, 421, types.INVALID_REQUEST, "Invalid Host header")
            return
        origin = _header(headers, b"origin")
        if origin is not None and not loopback_origin(origin):
            await json_error(send, 403, types.INVALID_REQUEST, "Invalid Origin header")
            return
        await self.app(scope, receive, send)

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        assert self._token is not None
        given = [value for key, value in headers if key == b"authorization"]
        if len(given) != 1:
            return False
        scheme, _, credentials = given[0].partition(b" ")
        # Constant-time comparison: response timing must not reveal a token's prefix.
        matches = hmac.compare_digest(credentials.lstrip(b" "), self._token)
        return scheme.lower() == b"bearer" and matches


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    found = [value for key, value in headers if key == name]
    if len(found) > 1:
        # Two Host or Origin headers are not one we can vouch for: an empty value passes
        # neither check.
        return ""
    return found[0].decode("latin-1") if found else None
