"""The single query layer: answers to inspection questions about a pipeline.

Each function returns a pydantic model (``query.models``); the CLI's ``--format json``
and the MCP tools render the same answers. Nothing here runs a step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from async_pipeline.core.model import Pipeline
from async_pipeline.errors import UsageError
from async_pipeline.query import _data, _runs

if TYPE_CHECKING:
    from async_pipeline.query.models import (
        Explanation,
        Graph,
        InputDiff,
        PipelineMetadata,
        RunDetails,
        RunList,
        TaskList,
    )

__all__ = [
    "diff_inputs",
    "explain_task",
    "graph",
    "list_runs",
    "list_tasks",
    "metadata",
    "read_run",
]


def metadata(pipeline: Pipeline, *, include_sources: bool = False) -> PipelineMetadata:
    """Everything the pipeline declares, normalized; ``include_sources`` adds on-disk sources."""
    from async_pipeline.query.models import PipelineMetadata

    _check_pipeline("query.metadata", pipeline)
    if not isinstance(include_sources, bool):
        raise _usage("query.metadata", "include_sources", "True or False", include_sources)
    return PipelineMetadata.model_validate(
        _data.metadata(pipeline, include_sources=include_sources)
    )


def list_tasks(
    pipeline: Pipeline,
    *,
    prefix: str | None = None,
    job: str | None = None,
    limit: int = _data.DEFAULT_PAGE,
    offset: int = 0,
) -> TaskList:
    """Tasks in declaration order (a page of ``limit``; 0 for all), optionally only those
    under an id prefix or in a job."""
    from async_pipeline.query.models import TaskList

    _check_pipeline("query.list_tasks", pipeline)
    _check_texts("query.list_tasks", prefix=prefix, job=job)
    _check_counts("query.list_tasks", limit=limit, offset=offset)
    return TaskList.model_validate(
        _data.list_tasks(pipeline, prefix=prefix, job=job, limit=limit, offset=offset)
    )


def graph(
    pipeline: Pipeline,
    *,
    job: str | None = None,
    prefix: str | None = None,
    limit: int = _data.DEFAULT_PAGE,
    offset: int = 0,
) -> Graph:
    """Task nodes (a page of ``limit``; 0 for all) and dependency edges (``from`` runs before
    ``to``)."""
    from async_pipeline.query.models import Graph

    _check_pipeline("query.graph", pipeline)
    _check_texts("query.graph", prefix=prefix, job=job)
    _check_counts("query.graph", limit=limit, offset=offset)
    return Graph.model_validate(
        _data.graph(pipeline, job=job, prefix=prefix, limit=limit, offset=offset)
    )


def explain_task(pipeline: Pipeline, task_id: str) -> Explanation:
    """One task resolved: config, dependencies, dependents, inputs, steps, jobs reaching it."""
    from async_pipeline.query.models import Explanation

    _check_pipeline("query.explain_task", pipeline)
    _check_texts("query.explain_task", optional=False, task_id=task_id)
    return Explanation.model_validate(_data.explain_task(pipeline, task_id))


def list_runs(
    root: str | os.PathLike[str], *, limit: int = 20, cursor: str | None = None
) -> RunList:
    """Recorded runs of the project at ``root``, newest first, a page at a time."""
    from async_pipeline.query.models import RunList

    where = "query.list_runs"
    _check_texts(where, cursor=cursor)
    _check_counts(where, limit=limit)
    return RunList.model_validate(_runs.list_runs(_root(root, where), limit=limit, cursor=cursor))


def read_run(root: str | os.PathLike[str], run_id: str, *, max_log_bytes: int = 4096) -> RunDetails:
    """One run: its record, the tail of each task's logs and its failure context packs."""
    from async_pipeline.query.models import RunDetails

    where = "query.read_run"
    _check_texts(where, optional=False, run_id=run_id)
    _check_counts(where, max_log_bytes=max_log_bytes)
    return RunDetails.model_validate(
        _runs.read_run(_root(root, where), run_id, max_log_bytes=max_log_bytes)
    )


def diff_inputs(pipeline: Pipeline, task_id: str) -> InputDiff:
    """What changed in a task's inputs since it last passed (content digests only)."""
    from async_pipeline.query.models import InputDiff

    _check_pipeline("query.diff_inputs", pipeline)
    _check_texts("query.diff_inputs", optional=False, task_id=task_id)
    return InputDiff.model_validate(_runs.diff_inputs(pipeline, task_id))


# Arguments are checked where a caller enters: a wrong type is a usage error naming the
# argument, not a Python error from deep inside an answer.


def _check_pipeline(where: str, pipeline: object) -> None:
    if not isinstance(pipeline, Pipeline):
        raise _usage(
            where,
            "pipeline",
            "a Pipeline",
            pipeline,
            hint="pass the result of define_pipeline(...) or load_pipeline(...)",
        )


def _check_texts(where: str, *, optional: bool = True, **values: object) -> None:
    for name, value in values.items():
        if not isinstance(value, str) and not (optional and value is None):
            raise _usage(where, name, "a string or None" if optional else "a string", value)


def _check_counts(where: str, **counts: object) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise _usage(where, name, "a whole number", value)


def _root(root: object, where: str) -> Path:
    if not isinstance(root, str | os.PathLike) or not isinstance(os.fspath(root), str):
        raise _usage(where, "root", "the project's directory (str or os.PathLike)", root)
    return Path(root)


def _usage(
    where: str, name: str, expected: str, value: object, *, hint: str | None = None
) -> UsageError:
    kind = "None" if value is None else type(value).__name__
    return UsageError(
        "ASYNC_PIPELINE_USAGE", f"{where}: {name} must be {expected}, got {kind}", hint=hint
    )
