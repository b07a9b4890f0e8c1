"""``async-pipeline mcp --http [HOST:]PORT``: the same server over streamable HTTP.

The SDK does the protocol (``Server.streamable_http_app``: sessions, SSE, Host/Origin
checks) and uvicorn serves it; this module decides what may reach it:

- It binds 127.0.0.1 unless a host is given. On a loopback address the Host and Origin
  headers must name localhost too, so a web page whose DNS name was rebound to 127.0.0.1
  cannot drive the server from a browser. Binding another address is an explicit choice to
  be reachable under names we cannot know, so that check is off there (use a token).
- ``--token-env NAME`` requires ``Authorization: Bearer <token>`` on every request, the
  token read from the environment variable NAME (never from argv, which ``ps`` shows, and
  never logged). Other requests get 401 before the SDK sees them.

The tools, and the ``run_job`` gating, are exactly stdio's: both call ``build_server``.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from async_pipeline.errors import UsageError
from async_pipeline.mcp_server._server import ServerOptions, build_server

if TYPE_CHECKING:
    import uvicorn
    from anyio.abc import TaskStatus
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HttpOptions", "serve_http"]

logger = logging.getLogger("async_pipeline.mcp_server")

DEFAULT_HOST = "127.0.0.1"
PATH = "/mcp"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# What a browser sends for a page served from this machine; any port, since hosts and
# inspectors pick their own.
LOCAL_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOCAL_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")


@dataclass(frozen=True)
class HttpOptions:
    """Where to listen and what a request must carry.

    ``host`` is None when the user gave only a port (then 127.0.0.1 is bound). ``port``
    0 lets the OS choose; the bound address is announced on stderr either way.
    """

    port: int
    host: str | None = None
    token: str | None = None


def parse_address(text: str) -> tuple[str | None, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` as ``(host or None, port)``."""
    host: str | None
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise _bad_address(text)
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    else:
        host, port_text = None, text
    if host == "" or not port_text.isdigit() or int(port_text) > 65535:
        raise _bad_address(text)
    return host, int(port_text)


def _bad_address(text: str) -> UsageError:
    return UsageError(
        "ASYNC_PIPELINE_USAGE",
        f"--http: {text!r} is not [HOST:]PORT",
        hint="e.g. --http 8765, --http 127.0.0.1:8765 or --http [::1]:8765",
    )


def read_token(name: str | None, environment: Mapping[str, str]) -> str | None:
    """The bearer token from the variable ``name``; a missing or empty one is a usage error."""
    if name is None:
        return None
    token = environment.get(name, "")
    if not token:
        # Starting without the token the user asked for would serve unauthenticated.
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            f"--token-env {name}: the environment variable {name} is not set or empty",
            hint=f"export {name}=<secret> before starting the server",
        )
    return token


class BearerTokenMiddleware:
    """Answer 401 to any HTTP request without ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            from starlette.responses import JSONResponse

            response = JSONResponse(
                {"error": "unauthorized", "error_description": "a valid bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="async-pipeline"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        given = [value for key, value in scope["headers"] if key == b"authorization"]
        # Constant-time comparison: response timing must not reveal a token's prefix.
        return len(given) == 1 and hmac.compare_digest(given[0], self._expected)


def build_app(options: ServerOptions, http: HttpOptions) -> ASGIApp:
    """The ASGI app: the SDK's streamable HTTP app, behind the token check if one is set."""
    from mcp.server.transport_security import TransportSecuritySettings

    from async_pipeline.mcp_server import tool_specs

    host = http.host or DEFAULT_HOST
    server = build_server(options, tool_specs(options))
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=host in LOOPBACK,
        allowed_hosts=list(LOCAL_HOSTS),
        allowed_origins=list(LOCAL_ORIGINS),
    )
    if host not in LOOPBACK:
        logger.warning(
            "listening on %s: Host/Origin checks are off; use --token-env to require a token", host
        )
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=PATH, transport_security=security, host=host
    )
    if http.token is not None:
        app = BearerTokenMiddleware(app, http.token)
    return app


def serve_http(options: ServerOptions, http: HttpOptions) -> int:
    """Serve until SIGINT/SIGTERM (uvicorn's graceful shutdown); return 0."""
    import uvicorn

    host = http.host or DEFAULT_HOST
    app = build_app(options, http)
    # Bind here rather than in uvicorn so port 0 works and the real port can be announced
    # before the first request: tests and scripts read it from stderr instead of guessing.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, http.port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            f"--http: cannot listen on {host}:{http.port}: {exc.strerror}",
            hint="pick another port, or 0 to let the system choose",
        ) from exc
    # Listening now means a client that read the announcement below can connect at once: its
    # connection waits in the backlog until uvicorn has started and accepts it.
    sock.listen(128)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(
        app,
        log_level="warning",
        # The access log prints request lines only, never headers, but a quiet server is
        # what stdio users get too; errors still reach stderr.
        access_log=False,
        # Open SSE streams would otherwise hold a Ctrl-C for as long as the client stays.
        timeout_graceful_shutdown=3,
        lifespan="on",
    )
    announcement = f"async-pipeline: MCP over HTTP at http://{shown}:{bound_port}{PATH}"
    anyio.run(_serve, config, sock, announcement)
    return 0


async def _serve(config: uvicorn.Config, sock: socket.socket, announcement: str) -> None:
    import uvicorn

    class QuietSignals(uvicorn.Server):
        # uvicorn re-raises the signal that stopped it once it has shut down, so the process
        # would die of SIGTERM; stdio's serve() exits 0 there, and --http should too.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = QuietSignals(config)
    async with anyio.create_task_group() as group:
        await group.start(_stop_on_signal, server)
        # Announced once signals are ours, so a SIGTERM sent on reading it is a clean stop.
        print(announcement, file=sys.stderr, flush=True)
        await server.serve(sockets=[sock])
        group.cancel_scope.cancel()


async def _stop_on_signal(
    server: uvicorn.Server, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
        task_status.started()
        async for _ in received:
            # The first signal drains: open streams close, in-flight run_jobs are cancelled
            # and finalize their records. A second one stops without waiting.
            if server.should_exit:
                server.force_exit = True
            server.should_exit = True
