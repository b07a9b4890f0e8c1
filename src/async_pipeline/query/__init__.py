"""The single query layer: answers to inspection questions about a pipeline.

Each function returns a pydantic model (``query.models``); the CLI's ``--format json``
and the MCP tools render the same answers. Nothing here runs a step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from async_pipeline.core.model import Pipeline
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

    return Graph.model_validate(
        _data.graph(pipeline, job=job, prefix=prefix, limit=limit, offset=offset)
    )


def explain_task(pipeline: Pipeline, task_id: str) -> Explanation:
    """One task resolved: config, dependencies, dependents, inputs, steps, jobs reaching it."""
    from async_pipeline.query.models import Explanation

    return Explanation.model_validate(_data.explain_task(pipeline, task_id))


def list_runs(root: Path, *, limit: int = 20, cursor: str | None = None) -> RunList:
    """Recorded runs of the project at ``root``, newest first, a page at a time."""
    from async_pipeline.query.models import RunList

    return RunList.model_validate(_runs.list_runs(root, limit=limit, cursor=cursor))


def read_run(root: Path, run_id: str, *, max_log_bytes: int = 4096) -> RunDetails:
    """One run: its record, the tail of each task's logs and its failure context packs."""
    from async_pipeline.query.models import RunDetails

    return RunDetails.model_validate(_runs.read_run(root, run_id, max_log_bytes=max_log_bytes))


def diff_inputs(pipeline: Pipeline, task_id: str) -> InputDiff:
    """What changed in a task's inputs since it last passed (content digests only)."""
    from async_pipeline.query.models import InputDiff

    return InputDiff.model_validate(_runs.diff_inputs(pipeline, task_id))
