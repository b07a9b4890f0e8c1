"""The tools: name, what an agent is told, input schema, output model, annotations, handler.

Each handler is an adapter (DESIGN.md): load the pipeline, call the same ``query._data``
function the CLI's ``--format json`` prints, return its data unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from async_pipeline.mcp_server._schemas import MAX_INTEGER, strict_object

if TYPE_CHECKING:
    from async_pipeline.core.model import Pipeline
    from async_pipeline.core.reload import Fingerprint, PipelineCache
    from async_pipeline.mcp_server._server import Call

__all__ = ["INSPECTION_TOOLS", "ToolSpec", "load", "project_root", "runs_root"]

Data = dict[str, Any]
Handler = Callable[["Call", Mapping[str, Any]], Awaitable[Data]]

_MODELS = "async_pipeline.query.models"
_TEXT = {"type": "string", "minLength": 1, "maxLength": 1024}


@dataclass(frozen=True)
class ToolSpec:
    """One tool as listed in tools/list, plus the function that answers it."""

    name: str
    title: str
    description: str
    properties: Mapping[str, Mapping[str, Any]]
    output_model: str
    handler: Handler
    required: tuple[str, ...] = ()
    read_only: bool = True
    input_schema: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_schema", strict_object(self.properties, self.required))


_PIPELINES: PipelineCache | None = None


def load(call: Call) -> Pipeline:
    """The pipeline as it is on disk now: re-imported whenever anything its import read
    (pipeline.py, project modules, data files, directory listings) has changed."""
    return load_fingerprinted(call)[0]


def load_fingerprinted(call: Call) -> tuple[Pipeline, Fingerprint]:
    """:func:`load`, with the fingerprint the pipeline is current for (for job stamps)."""
    global _PIPELINES
    if _PIPELINES is None:
        from async_pipeline.core.reload import PipelineCache

        _PIPELINES = PipelineCache()
    return _PIPELINES.load_fingerprinted(call.options.config, call.options.cwd)


def project_root(pipeline: Pipeline, cwd: Path) -> Path:
    """Where ``.async/`` lives: beside pipeline.py, as for the CLI."""
    return Path(pipeline.config_path).parent if pipeline.config_path else cwd


def runs_root(call: Call) -> Path:
    """Where ``.async/runs`` is read from without loading the pipeline, as ``runs`` does."""
    from async_pipeline.core.loader import project_root

    return project_root(call.options.config, call.options.cwd)


async def _list_tasks(call: Call, args: Mapping[str, Any]) -> Data:
    from async_pipeline.query import _data

    return _data.list_tasks(
        load(call),
        prefix=args.get("prefix"),
        job=args.get("job"),
        limit=args.get("limit", _data.DEFAULT_PAGE),
        offset=args.get("offset", 0),
    )


async def _graph(call: Call, args: Mapping[str, Any]) -> Data:
    from async_pipeline.query import _data

    return _data.graph(
        load(call),
        job=args.get("job"),
        prefix=args.get("prefix"),
        limit=args.get("limit", _data.DEFAULT_PAGE),
        offset=args.get("offset", 0),
    )


async def _explain_task(call: Call, args: Mapping[str, Any]) -> Data:
    from async_pipeline.query import _data

    return _data.explain_task(load(call), args["task"])


async def _metadata(call: Call, args: Mapping[str, Any]) -> Data:
    from async_pipeline.query import _data

    return _data.metadata(load(call), include_sources=bool(args.get("includeSources", False)))


async def _list_runs(call: Call, args: Mapping[str, Any]) -> Data:
    from async_pipeline.query import _data

    return _data.list_runs(runs_root(call), limit=args.get("limit", 20), cursor=args.get("cursor"))


async def _read_run(call: Call, args: Mapping[str, Any]) -> Data:
    from async_pipeline.query import _data

    return _data.read_run(runs_root(call), args["runId"])


async def _diff_inputs(call: Call, args: Mapping[str, Any]) -> Data:
    from async_pipeline.query import _data

    return _data.diff_inputs(load(call), args["task"])


_PREFIX = {
    **_TEXT,
    "description": "Only tasks whose id starts with this (e.g. 'dist.' for the dist group).",
}
_JOB = {**_TEXT, "description": "Only tasks the job runs (its targets and their dependencies)."}
_LIMIT = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_INTEGER,
    "description": "Tasks per answer (default 200; 0 for all). A cut answer says truncated, "
    "with nextOffset to continue from.",
}
_OFFSET = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_INTEGER,
    "description": "Skip this many tasks (paging).",
}

INSPECTION_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="list_tasks",
        title="List tasks",
        description=(
            "List the pipeline's tasks in declaration order: id, description, direct "
            "dependencies (dependsOn), cache ref, declared outputs and the jobs that reach each "
            "task. Use it first to learn what exists; narrow large pipelines with 'prefix' "
            "(task id prefix) or 'job'. Runs nothing. Same JSON as "
            "`async-pipeline list --format json`."
        ),
        properties={"prefix": _PREFIX, "job": _JOB, "limit": _LIMIT, "offset": _OFFSET},
        output_model=f"{_MODELS}:TaskList",
        handler=_list_tasks,
    ),
    ToolSpec(
        name="graph",
        title="Task dependency graph",
        description=(
            "The task dependency graph as nodes and edges; an edge {from, to} means 'from' runs "
            "before 'to'. Dependencies on other repositories appear as nodes of kind 'source'. "
            "Use it to see order and fan-out; filter with 'job' or 'prefix'. Runs nothing. Same "
            "JSON as `async-pipeline graph --format json`."
        ),
        properties={"job": _JOB, "prefix": _PREFIX, "limit": _LIMIT, "offset": _OFFSET},
        output_model=f"{_MODELS}:Graph",
        handler=_graph,
    ),
    ToolSpec(
        name="explain_task",
        title="Explain one task",
        description=(
            "One task fully resolved: steps, inputs (and the named input groups they use), "
            "outputs, cache, retry, timeout, env (secret names only, never values), direct and "
            "transitive dependencies and dependents, and the jobs that run it. Use it before "
            "changing or debugging a task. Unknown ids fail with ASYNC_PIPELINE_UNKNOWN_TASK "
            "and the nearest id. Runs nothing. Same JSON as "
            "`async-pipeline explain TASK --format json`."
        ),
        properties={"task": {**_TEXT, "description": "Task id, e.g. 'build' or 'dist.check'."}},
        required=("task",),
        output_model=f"{_MODELS}:Explanation",
        handler=_explain_task,
    ),
    ToolSpec(
        name="metadata",
        title="Pipeline metadata",
        description=(
            "Everything the pipeline declares, normalized: env, cache stores, named inputs, "
            "task defaults, triggers, sync settings, sources, every task and job, sandboxes, "
            "execution profiles, agent profiles and the command policy. Large: prefer "
            "list_tasks or explain_task for focused questions. 'includeSources' adds the "
            "pipelines of sources already on disk (never clones or prepares). Runs nothing. Same "
            "JSON as `async-pipeline metadata --format json`."
        ),
        properties={
            "includeSources": {
                "type": "boolean",
                "description": "Also load pipelines of sources already on disk.",
            }
        },
        output_model=f"{_MODELS}:PipelineMetadata",
        handler=_metadata,
    ),
    ToolSpec(
        name="list_runs",
        title="List runs",
        description=(
            "Recorded runs of this project, newest first, one page at a time: id, job, status, "
            "start and finish times, whether it was interrupted, task counts by status and how "
            "many tasks were cache hits. 'total' counts all runs; when 'nextCursor' is not null, "
            "pass it as 'cursor' for the next page. Then use read_run on an id. Runs nothing. "
            "Same JSON as `async-pipeline runs --format json`."
        ),
        properties={
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 200,
                "description": "Runs per page (default 20).",
            },
            "cursor": {**_TEXT, "description": "The 'nextCursor' of the previous page."},
        },
        output_model=f"{_MODELS}:RunList",
        handler=_list_runs,
    ),
    ToolSpec(
        name="read_run",
        title="Read one run",
        description=(
            "One run in detail: its execution record as stored (per task: status, attempts, "
            "cache hit, timings, exit code, error), the last 4 KiB of each task's redacted "
            "stdout and stderr (with the full size and a truncated flag), and any failure "
            "context packs (error, log tail, reproduction command, input diff). Use it to find "
            "out why a run failed. Unknown ids fail with ASYNC_PIPELINE_UNKNOWN_RUN. Runs "
            "nothing. Same JSON as `async-pipeline runs show RUN_ID --format json`."
        ),
        properties={"runId": {**_TEXT, "description": "A run id from list_runs."}},
        required=("runId",),
        output_model=f"{_MODELS}:RunDetails",
        handler=_read_run,
    ),
    ToolSpec(
        name="diff_inputs",
        title="Diff a task's inputs",
        description=(
            "What changed in a task's declared input files since it last passed: added, "
            "removed and changed paths with content digests (never file contents), and how "
            "many are unchanged; 'baselineMissing' with a reason when the task never passed "
            "with caching. Use it to see why a task is no longer a cache hit or what a failing "
            "task's inputs changed. Runs nothing. Same JSON as "
            "`async-pipeline explain TASK --diff-inputs --format json`."
        ),
        properties={"task": {**_TEXT, "description": "Task id, e.g. 'build'."}},
        required=("task",),
        output_model=f"{_MODELS}:InputDiff",
        handler=_diff_inputs,
    ),
)
