"""Pure graph questions over a normalized pipeline: closures, dependents, order."""

from __future__ import annotations

from collections.abc import Iterable

from async_pipeline.core.model import Pipeline

__all__ = ["dependents", "job_tasks", "jobs_reaching", "topological", "transitive_dependencies"]


def transitive_dependencies(pipeline: Pipeline, roots: Iterable[str]) -> list[str]:
    """Every task the roots need (roots included), dependencies before dependents."""
    order: list[str] = []
    seen: set[str] = set()
    for root in roots:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            deps = pipeline.tasks[node].depends_on if node in pipeline.tasks else ()
            stack.extend((dep, False) for dep in reversed(deps) if dep not in seen)
    return order


def job_tasks(pipeline: Pipeline, job_id: str) -> list[str]:
    """The subgraph a job runs: its targets and everything they depend on."""
    return transitive_dependencies(pipeline, pipeline.jobs[job_id].targets)


def dependents(pipeline: Pipeline, task_id: str, *, transitive: bool = False) -> list[str]:
    """Tasks that depend on ``task_id`` (directly, or through others), in declaration order."""
    direct: dict[str, list[str]] = {}
    for task in pipeline.tasks.values():
        for dep in task.depends_on:
            direct.setdefault(dep, []).append(task.id)
    if not transitive:
        return direct.get(task_id, [])
    found: set[str] = set()
    stack = list(direct.get(task_id, []))
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(direct.get(node, []))
    return [t for t in pipeline.tasks if t in found]


def jobs_reaching(pipeline: Pipeline, task_id: str) -> list[str]:
    """Jobs whose run includes ``task_id``."""
    return [job_id for job_id in pipeline.jobs if task_id in job_tasks(pipeline, job_id)]


def topological(pipeline: Pipeline) -> list[str]:
    """All tasks, dependencies first (stable with respect to declaration order)."""
    return [t for t in transitive_dependencies(pipeline, pipeline.tasks) if t in pipeline.tasks]
