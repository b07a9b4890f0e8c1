"""The MCP server: the pipeline's inspection surface (and, with ``--allow-run``, ``run_job``).

``async-pipeline mcp`` calls :func:`serve`. The CLI imports this package only for that
command, so ``--help``, ``list`` and ``metadata`` never load the MCP SDK.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio

from async_pipeline.mcp_server._server import ServerOptions, build_server
from async_pipeline.mcp_server._tools import INSPECTION_TOOLS, ToolSpec

__all__ = ["ServerOptions", "serve", "tool_specs"]


def tool_specs(options: ServerOptions) -> tuple[ToolSpec, ...]:
    """The tools this server offers: inspection always, ``run_job`` only when allowed."""
    if not options.allow_run:
        return INSPECTION_TOOLS
    from async_pipeline.mcp_server._run import RUN_JOB

    return (*INSPECTION_TOOLS, RUN_JOB)


def serve(
    *, config: str | None = None, cwd: str | os.PathLike[str] | None = None, allow_run: bool = False
) -> int:
    """Serve MCP over stdio until the host closes stdin or sends SIGINT/SIGTERM; return 0."""
    options = ServerOptions(
        cwd=Path(cwd) if cwd is not None else Path.cwd(), config=config, allow_run=allow_run
    )
    anyio.run(_serve_stdio, options)
    return 0


async def _serve_stdio(options: ServerOptions) -> None:
    from async_pipeline.mcp_server._stdio import serve_stdio

    server = build_server(options, tool_specs(options))
    async with anyio.create_task_group() as group:
        group.start_soon(_stop_on_signal, group.cancel_scope)
        # A signal cancels this scope: in-flight run_job calls end their tasks and finalize
        # their records on the way out, as a CLI run does on SIGINT. Our transport (not the
        # SDK's stdio_server) answers malformed lines and keeps fd 1 off the wire.
        await serve_stdio(server)
        group.cancel_scope.cancel()


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
        async for _ in received:
            scope.cancel()
            return
