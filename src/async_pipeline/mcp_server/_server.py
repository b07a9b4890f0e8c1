"""The MCP server: the SDK's low-level ``Server`` with our tool table (see adr/0003).

Every answer is a ``CallToolResult`` whose ``structuredContent`` is exactly the data the
CLI prints for ``--format json``, repeated as JSON text for hosts that ignore structured
content. Errors our code raises are ``PipelineError``s and come back as ``isError``
results carrying the code, never as tracebacks.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from async_pipeline.errors import PipelineError, UsageError, sole_error
from async_pipeline.mcp_server import _resources
from async_pipeline.mcp_server._inflight import RunningJobs
from async_pipeline.mcp_server._refusals import explain_refusals
from async_pipeline.mcp_server._schemas import check_arguments, output_schema
from async_pipeline.mcp_server._tools import ToolSpec

__all__ = ["Call", "ServerOptions", "build_server", "sole_pipeline_error"]

logger = logging.getLogger("async_pipeline.mcp_server")
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}

INSTRUCTIONS = (
    "async-pipeline: inspect this repository's pipeline (tasks, jobs, dependency graph, "
    "resolved task config, metadata) and its past runs without running anything. Start with "
    "list_tasks or graph, then explain_task for one task. Runs and their failure context "
    "packs are also resources (async-pipeline://runs/{runId}). Errors carry a stable "
    "ASYNC_PIPELINE_* code and a hint."
)


@dataclass(frozen=True)
class ServerOptions:
    """How the server was started: which pipeline, and whether ``run_job`` is allowed.

    ``runs`` is the server's own state, not an option: the runs in progress, which a
    stopping server interrupts (``_inflight``).
    """

    cwd: Path
    config: str | None = None
    allow_run: bool = False
    runs: RunningJobs = field(default_factory=RunningJobs, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    """What a tool handler gets besides its arguments: the options and the request context."""

    options: ServerOptions
    request: ServerRequestContext[Any, Any]


def _tool(spec: ToolSpec) -> types.Tool:
    read_only = spec.read_only
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.input_schema,
        output_schema=output_schema(spec.output_model),
        annotations=types.ToolAnnotations(
            title=spec.title,
            read_only_hint=read_only,
            # The hints below only mean something for a tool that writes (run_job).
            destructive_hint=None if read_only else True,
            idempotent_hint=None if read_only else False,
            open_world_hint=not read_only,
        ),
    )


def _json(data: Any) -> str:
    return orjson.dumps(data).decode()


def answer(data: Mapping[str, Any]) -> types.CallToolResult:
    """A successful result: the CLI's JSON as structured content and as text."""
    # Round-trip through orjson, the CLI's serializer, so the structured content is the
    # very JSON the CLI prints (tuples become lists, nothing non-JSON survives).
    text = _json(data)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=orjson.loads(text),
    )


def failure(exc: PipelineError) -> types.CallToolResult:
    """An error result with the same ``{"error": {...}}`` body the CLI prints for JSON."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=_json({"error": exc.to_dict()}))],
        is_error=True,
    )


@contextmanager
def _no_internals(method: str) -> Iterator[None]:
    """Let ``MCPError``s through; turn anything else into a bare ``-32603``.

    Left alone, the SDK would answer an unexpected exception with code 0 and its message
    (internals, such as a decoder's complaint). The traceback is for the operator's stderr.
    """
    try:
        yield
    except MCPError:
        raise
    except Exception:
        logger.exception("%s failed", method)
        raise MCPError(code=types.INTERNAL_ERROR, message="Internal error") from None


def sole_pipeline_error(exc: BaseException) -> PipelineError | None:
    """The ``PipelineError`` a task group wrapped, when it is all the group holds.

    A handler that runs work in a task group (``run_job`` beside its progress pump) gets
    even a single failure back as an ``ExceptionGroup``. One ``PipelineError`` in it is
    still the caller's answer; several errors, or anything else, are not.
    """
    found = sole_error(exc)
    return found if isinstance(found, PipelineError) else None


def build_server(options: ServerOptions, specs: Sequence[ToolSpec]) -> Server[Any]:
    """A server offering ``specs`` (the caller leaves ``run_job`` out unless allowed)."""
    from async_pipeline import __version__

    offered = {spec.name: spec for spec in specs}

    async def set_logging_level(
        ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        # The server's own diagnostics go to stderr through this logger; a host may turn
        # their level up or down. (Task output never goes through it: it stays in task logs.)
        logger.setLevel(_LOG_LEVELS.get(str(params.level), logging.WARNING))
        return types.EmptyResult()

    async def list_prompts(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        # No prompts yet; answering (rather than method-not-found) lets hosts that always ask
        # for prompts carry on.
        return types.ListPromptsResult(prompts=[])

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[_tool(spec) for spec in offered.values()])

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = offered.get(params.name)
        if spec is None:
            if params.name == "run_job":
                # Listed nowhere, so a host calling it guessed; say how to enable it.
                return failure(
                    UsageError(
                        "ASYNC_PIPELINE_USAGE",
                        "run_job is disabled: this server was started without --allow-run",
                        hint="restart it with `async-pipeline mcp --allow-run` to run jobs",
                    )
                )
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        try:
            arguments = check_arguments(spec.name, spec.input_schema, params.arguments or {})
            return answer(await spec.handler(Call(options, ctx), arguments))
        except MCPError:
            # A protocol-level answer on purpose (a run cut off by shutdown), not a failure.
            raise
        except PipelineError as exc:
            return failure(exc)
        except Exception as exc:
            sole = sole_pipeline_error(exc)
            if sole is not None:
                return failure(sole)
            # Our bug, not the caller's: log it for the operator (stderr), answer with a code.
            logger.exception("tool %s failed", spec.name)
            return failure(
                PipelineError(
                    "ASYNC_PIPELINE_INTERNAL",
                    f"unexpected {type(exc).__name__} in {spec.name}",
                    hint="the server's stderr has the traceback; please report it",
                )
            )

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        with _no_internals(ctx.method):
            return await _resources.list_resources(options, ctx, params)

    async def list_templates(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        with _no_internals(ctx.method):
            return await _resources.list_templates(options, ctx, params)

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        with _no_internals(ctx.method):
            return await _resources.read_resource(options, ctx, params)

    # Logging is a deprecated MCP capability (SEP-2577) that hosts and the conformance suite
    # still exercise; answering it is harmless, and its deprecation notice is not for users.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        server: Server[Any] = Server(
            "async-pipeline",
            version=__version__,
            title="async-pipeline",
            instructions=INSTRUCTIONS,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_list_prompts=list_prompts,
            on_set_logging_level=set_logging_level,
            on_list_resources=list_resources,
            on_list_resource_templates=list_templates,
            on_read_resource=read_resource,
        )
    # Inside the SDK's own (OpenTelemetry) middleware, so its spans record our answers.
    server.middleware.append(explain_refusals)
    return server
