"""The single query layer: answers to inspection questions about a pipeline.

Each function returns a pydantic model (``query.models``); the CLI's ``--format json``
and the MCP tools render the same answers. Nothing here runs a step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from async_pipeline.core.model import Pipeline
from async_pipeline.query import _data

if TYPE_CHECKING:
    from async_pipeline.query.models import Explanation, Graph, PipelineMetadata, TaskList

__all__ = ["explain_task", "graph", "list_tasks", "metadata"]


def metadata(pipeline: Pipeline, *, include_sources: bool = False) -> PipelineMetadata:
    """Everything the pipeline declares, normalized; ``include_sources`` adds on-disk sources."""
    from async_pipeline.query.models import PipelineMetadata

    return PipelineMetadata.model_validate(
        _data.metadata(pipeline, include_sources=include_sources)
    )


def list_tasks(
    pipeline: Pipeline, *, prefix: str | None = None, job: str | None = None
) -> TaskList:
    """Tasks in declaration order, optionally only those under an id prefix or in a job."""
    from async_pipeline.query.models import TaskList

    return TaskList.model_validate(_data.list_tasks(pipeline, prefix=prefix, job=job))


def graph(pipeline: Pipeline, *, job: str | None = None, prefix: str | None = None) -> Graph:
    """Task nodes and dependency edges (``from`` runs before ``to``)."""
    from async_pipeline.query.models import Graph

    return Graph.model_validate(_data.graph(pipeline, job=job, prefix=prefix))


def explain_task(pipeline: Pipeline, task_id: str) -> Explanation:
    """One task resolved: config, dependencies, dependents, inputs, steps, jobs reaching it."""
    from async_pipeline.query.models import Explanation

    return Explanation.model_validate(_data.explain_task(pipeline, task_id))
