"""Runs and their failure context packs as MCP resources, for hosts that prefer resources.

Two URI templates (issue 6, point 5):

- ``async-pipeline://runs/{runId}``: the ``read_run`` answer (the same JSON as the tool and
  as ``async-pipeline runs show RUN_ID --format json``);
- ``async-pipeline://runs/{runId}/context/{taskId}``: one failure context pack of that run.

``resources/list`` lists the most recent runs a page at a time (the cursor is ``list_runs``'s).
Ids are checked by ``query._runs`` before any path is built, and a task id is only ever looked
up among the packs that exist, so no URI can name a file outside ``.async/runs``. Unknown ids
are ``-32602`` errors, as the MCP spec asks for a resource that does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError

from async_pipeline.errors import PipelineError, QueryError
from async_pipeline.mcp_server._tools import runs_root

__all__ = ["PAGE_SIZE", "SCHEME", "list_resources", "list_templates", "read_resource"]

SCHEME = "async-pipeline://"
PAGE_SIZE = 20
_RUNS = f"{SCHEME}runs/"
_JSON = "application/json"

TEMPLATES = (
    types.ResourceTemplate(
        name="run",
        title="One run",
        uri_template=f"{_RUNS}{{runId}}",
        description=(
            "One recorded run: its execution record, the capped tail of each task's logs and "
            "its failure context packs. The same JSON as the read_run tool."
        ),
        mime_type=_JSON,
    ),
    types.ResourceTemplate(
        name="context-pack",
        title="Failure context pack",
        uri_template=f"{_RUNS}{{runId}}/context/{{taskId}}",
        description=(
            "Why one task of a run failed: error, log tail, reproduction command and input "
            "diff. Only failed tasks have one."
        ),
        mime_type=_JSON,
    ),
)

if TYPE_CHECKING:  # _server imports this module
    from async_pipeline.mcp_server._server import Call, ServerOptions


def _call(options: ServerOptions, ctx: ServerRequestContext[Any, Any]) -> Call:
    from async_pipeline.mcp_server._server import Call

    return Call(options, ctx)


async def list_templates(
    options: ServerOptions,
    ctx: ServerRequestContext[Any, Any],
    params: types.PaginatedRequestParams | None,
) -> types.ListResourceTemplatesResult:
    """Both templates; they do not depend on what has run."""
    return types.ListResourceTemplatesResult(resource_templates=list(TEMPLATES))


async def list_resources(
    options: ServerOptions,
    ctx: ServerRequestContext[Any, Any],
    params: types.PaginatedRequestParams | None,
) -> types.ListResourcesResult:
    """The newest runs, ``PAGE_SIZE`` at a time, newest first."""
    from async_pipeline.query import _data

    cursor = params.cursor if params is not None else None
    try:
        page = _data.list_runs(runs_root(_call(options, ctx)), limit=PAGE_SIZE, cursor=cursor)
    except PipelineError as exc:
        raise _mcp_error(exc, cursor or "") from None
    return types.ListResourcesResult(
        resources=[_run_resource(run) for run in page["runs"]], next_cursor=page["nextCursor"]
    )


def _run_resource(run: dict[str, Any]) -> types.Resource:
    label = ", ".join(str(part) for part in (run["jobId"], run["status"]) if part is not None)
    return types.Resource(
        uri=f"{_RUNS}{run['id']}",
        name=run["id"],
        title=f"Run {run['id']}" + (f" ({label})" if label else ""),
        description=f"started {run['startedAt']}" if run["startedAt"] else None,
        mime_type=_JSON,
    )


async def read_resource(
    options: ServerOptions,
    ctx: ServerRequestContext[Any, Any],
    params: types.ReadResourceRequestParams,
) -> types.ReadResourceResult:
    """A run or one of its context packs, as JSON text."""
    from async_pipeline.query import _data

    uri = str(params.uri)
    try:
        run_id, task_id = _parse(uri)
        root = runs_root(_call(options, ctx))
        if task_id is None:
            data: Any = _data.read_run(root, run_id)
        else:
            data = _pack(root, run_id, task_id)
    except PipelineError as exc:
        raise _mcp_error(exc, uri) from None
    text = orjson.dumps(data).decode()
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type=_JSON, text=text)]
    )


def _parse(uri: str) -> tuple[str, str | None]:
    if not uri.startswith(_RUNS):
        raise QueryError(
            "ASYNC_PIPELINE_USAGE",
            f"not an async-pipeline resource: {uri!r}",
            hint=f"use {_RUNS}{{runId}} or {_RUNS}{{runId}}/context/{{taskId}}",
        )
    # Segments are percent-decoded one by one, so an encoded "/" stays inside its segment
    # (and is then refused by the id checks) instead of changing the URI's shape.
    parts = [_decoded(part) for part in uri[len(_RUNS) :].split("/")]
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 3 and parts[1] == "context":
        return parts[0], parts[2]
    raise QueryError(
        "ASYNC_PIPELINE_USAGE",
        f"no such resource: {uri!r}",
        hint=f"use {_RUNS}{{runId}} or {_RUNS}{{runId}}/context/{{taskId}}",
    )


def _decoded(segment: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise QueryError(
            "ASYNC_PIPELINE_USAGE",
            f"{segment[:200]!r} does not percent-decode to UTF-8 text",
            path=segment[:200],
            hint="run ids and task ids are text: percent-encode their UTF-8 bytes",
        ) from None


def _pack(root: Path, run_id: str, task_id: str) -> Any:
    from async_pipeline.query._runs import context_packs

    packs = context_packs(root, run_id)["packs"]  # checks the run id first
    if task_id not in packs:
        failed = ", ".join(sorted(packs)[:5])
        raise QueryError(
            "ASYNC_PIPELINE_UNKNOWN_TASK",
            f"run {run_id} has no context pack for {task_id!r}",
            path=task_id,
            hint=f"packs in this run: {failed}" if failed else "no task of this run failed",
        )
    return packs[task_id]


def _mcp_error(exc: PipelineError, uri: str) -> MCPError:
    # A record that exists but cannot be read is our problem, not a wrong URI.
    code = (
        types.INTERNAL_ERROR
        if exc.code == "ASYNC_PIPELINE_RUN_UNREADABLE"
        else types.INVALID_PARAMS
    )
    return MCPError(code=code, message=exc.message, data={"uri": uri, "error": exc.to_dict()})
