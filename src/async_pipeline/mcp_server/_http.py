"""``async-pipeline mcp --http [HOST:]PORT``: the same server over streamable HTTP.

The SDK does the protocol (``Server.streamable_http_app``: sessions, SSE) and uvicorn
serves it; this module decides where it listens and what may reach it (see adr/0003):

- It binds 127.0.0.1 unless a host is given. Whether an address is loopback is decided by
  the address (``_address``), not by how it is spelled, and any other bind requires
  ``--token-env``: an address reachable from other machines is never served without a
  token.
- ``--token-env NAME`` requires ``Authorization: Bearer <token>`` on every request, the
  token read from the environment variable NAME (never from argv, which ``ps`` shows, and
  never logged). NAME is then removed from this process's environment, so runs, their
  tasks and their logs never see it. ``_gate`` checks the token, and the Host (loopback
  binds) and Origin (every bind) headers that keep web pages out.
- ``_exchanges`` answers malformed messages itself, as stdio does, and ends every open
  exchange when the server stops: SIGINT/SIGTERM interrupt in-flight runs at once (their
  records are finalized), their callers get a JSON-RPC error, and the process exits 0.

The tools, and the ``run_job`` gating, are exactly stdio's: both call ``build_server``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from async_pipeline.errors import UsageError
from async_pipeline.mcp_server._address import Bind, parse_address, resolve_bind
from async_pipeline.mcp_server._exchanges import Exchanges
from async_pipeline.mcp_server._gate import Gate
from async_pipeline.mcp_server._server import ServerOptions, build_server

if TYPE_CHECKING:
    import uvicorn
    from anyio.abc import TaskStatus
    from starlette.types import ASGIApp

    from async_pipeline.mcp_server._inflight import RunningJobs

__all__ = ["HttpOptions", "Token", "parse_address", "read_token", "serve_http"]

logger = logging.getLogger("async_pipeline.mcp_server")

PATH = "/mcp"
# On SIGINT/SIGTERM: how long interrupted runs may take to finalize their records, and how
# long answers already on their way get before their exchanges are cut off.
RUNS_STOP_TIMEOUT = 10.0
ANSWER_GRACE = 2.0


@dataclass(frozen=True)
class Token:
    """A bearer token and the environment variable it was read from; its repr hides it."""

    variable: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class HttpOptions:
    """Where to listen and what a request must carry.

    ``host`` is None when the user gave only a port (then 127.0.0.1 is bound). ``port``
    0 lets the OS choose; the bound address is announced on stderr either way.
    """

    port: int
    host: str | None = None
    token: Token | None = None


def read_token(name: str | None, environment: Mapping[str, str]) -> Token | None:
    """The bearer token from the variable ``name``; a missing or empty one is a usage error."""
    if name is None:
        return None
    value = environment.get(name, "")
    if not value:
        # Starting without the token the user asked for would serve unauthenticated.
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            f"--token-env {name}: the environment variable {name} is not set or empty",
            hint=f"export {name}=<secret> before starting the server",
        )
    return Token(name, value)


def check_exposure(bind: Bind, token: Token | None) -> None:
    """Refuse to serve an address other machines may reach without a token."""
    if bind.loopback or token is not None:
        return
    raise UsageError(
        "ASYNC_PIPELINE_USAGE",
        f"--http: {bind.shown} is not a loopback address, and serving it without a token "
        "would let anyone who can reach it use the server",
        hint="add --token-env NAME (export NAME=<secret> first; clients then send "
        "`Authorization: Bearer <secret>`), or listen on 127.0.0.1",
    )


def build_app(options: ServerOptions, http: HttpOptions) -> tuple[ASGIApp, Exchanges]:
    """The ASGI app (the SDK's, behind our checks) and its exchanges, to close on a signal."""
    from mcp.server.transport_security import TransportSecuritySettings

    from async_pipeline.mcp_server import tool_specs

    bind = resolve_bind(http.host)
    check_exposure(bind, http.token)
    server = build_server(options, tool_specs(options))
    # Host and Origin are the Gate's to check, on every bind: the SDK's own check knows
    # loopback only by three spellings, and checks Origin only where it checks Host.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    exchanges = Exchanges(
        server.streamable_http_app(
            streamable_http_path=PATH, transport_security=security, host=bind.address
        )
    )
    token = None if http.token is None else http.token.value
    return Gate(exchanges, token=token, check_host=bind.loopback), exchanges


def serve_http(options: ServerOptions, http: HttpOptions) -> int:
    """Serve until SIGINT/SIGTERM; return 0."""
    import uvicorn

    bind = resolve_bind(http.host)
    app, exchanges = build_app(options, http)
    if http.token is not None:
        # The token is the server's alone: runs (their tasks, function steps run in this
        # process, agents) get this environment, and whatever they print lands in logs
        # and read_run answers. The runner cannot be told to mask an extra value.
        os.environ.pop(http.token.variable, None)
    if not bind.loopback:
        logger.warning(
            "listening on %s, which other machines may reach: every request needs the token",
            bind.shown,
        )
    sock = _listen(bind, http.port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        # The access log prints request lines only, never headers, but a quiet server is
        # what stdio users get too; errors still reach stderr.
        access_log=False,
        # A backstop only: on a signal we end every exchange ourselves (_stop).
        timeout_graceful_shutdown=3,
        lifespan="on",
    )
    announcement = (
        f"async-pipeline: MCP over HTTP at http://{bind.shown}:{sock.getsockname()[1]}{PATH}"
    )
    anyio.run(_serve, config, sock, announcement, options.runs, exchanges)
    return 0


def _listen(bind: Bind, port: int) -> socket.socket:
    # Bind here rather than in uvicorn so port 0 works and the real port can be announced
    # before the first request: tests and scripts read it from stderr instead of guessing.
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            bind.address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            f"--http: cannot listen on {bind.shown}: {exc.strerror}",
            hint="use an IP address of this machine, or 127.0.0.1",
        ) from exc
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            f"--http: cannot listen on {bind.shown}:{port}: {exc.strerror}",
            hint="pick another port, or 0 to let the system choose",
        ) from exc
    # Listening now means a client that read the announcement can connect at once: its
    # connection waits in the backlog until uvicorn has started and accepts it.
    sock.listen(128)
    return sock


async def _serve(
    config: uvicorn.Config,
    sock: socket.socket,
    announcement: str,
    runs: RunningJobs,
    exchanges: Exchanges,
) -> None:
    import uvicorn

    class QuietSignals(uvicorn.Server):
        # uvicorn re-raises the signal that stopped it once it has shut down, so the process
        # would die of SIGTERM; stdio's serve() exits 0 there, and --http should too.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = QuietSignals(config)
    async with anyio.create_task_group() as group:
        await group.start(_stop_on_signal, server, runs, exchanges)
        # Announced once signals are ours, so a SIGTERM sent on reading it is a clean stop.
        print(announcement, file=sys.stderr, flush=True)
        await server.serve(sockets=[sock])
        group.cancel_scope.cancel()


async def _stop_on_signal(
    server: uvicorn.Server,
    runs: RunningJobs,
    exchanges: Exchanges,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
        task_status.started()
        async with anyio.create_task_group() as group:
            stopping = False
            async for signum in received:
                if not stopping:
                    stopping = True
                    group.start_soon(_stop, server, runs, exchanges, signal.Signals(signum).name)
                else:
                    # A second signal stops without waiting for anything.
                    server.should_exit = server.force_exit = True


async def _stop(
    server: uvicorn.Server, runs: RunningJobs, exchanges: Exchanges, reason: str
) -> None:
    """Interrupt the runs, answer or cut off every open exchange, then let uvicorn exit.

    uvicorn's own graceful shutdown would wait for open streams (an SSE GET stream never
    ends) and then cancel them with a traceback, runs and their records included.
    """
    exchanges.refuse_new()
    with anyio.move_on_after(RUNS_STOP_TIMEOUT):
        await runs.stop(reason)
    await exchanges.close(ANSWER_GRACE)
    server.should_exit = True
