"""``task(...)`` and ``job(...)``: branded declarations validated when the pipeline is defined.

Fields are kept as given and checked by ``define_pipeline``, which knows each
declaration's full path (``tasks.build.timout``), so a typo is reported where it lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from async_pipeline.core._validate import MISSING
from async_pipeline.errors import DefinitionError

__all__ = ["JOB_FIELDS", "MISSING", "TASK_FIELDS", "JobDecl", "TaskDecl", "job", "task"]

TASK_FIELDS = (
    "description",
    "depends_on",
    "inputs",
    "outputs",
    "cache",
    "retry",
    "timeout",
    "requires",
    "env",
    "run",
    "steps",
)
JOB_FIELDS = (
    "description",
    "target",
    "trigger",
    "environment",
    "requires",
    "env",
    "github",
    "mode",
    "execution",
)


@dataclass(frozen=True, slots=True)
class TaskDecl:
    """A declared task: its keyword fields and positional steps/directives, as given."""

    fields: Mapping[str, object] = field(default_factory=dict)
    items: tuple[object, ...] = ()


@dataclass(frozen=True, slots=True)
class JobDecl:
    """A declared job: its fields, as given."""

    fields: Mapping[str, object] = field(default_factory=dict)


def _given(values: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not MISSING}


def task(
    *items: object,
    description: str = MISSING,
    depends_on: list[str] | tuple[str, ...] | str = MISSING,
    inputs: list[str] | tuple[str, ...] = MISSING,
    outputs: list[str] | tuple[str, ...] = MISSING,
    cache: bool | str | Mapping[str, object] = MISSING,
    retry: int | Mapping[str, int] = MISSING,
    timeout: int | str = MISSING,
    requires: Mapping[str, object] = MISSING,
    env: Mapping[str, object] = MISSING,
    run: object = MISSING,
    steps: list[object] | tuple[object, ...] = MISSING,
    **unknown: object,
) -> TaskDecl:
    """Declare a task.

    Steps come from ``run=`` (one step or a list), ``steps=[...]``, or positionally:
    ``task(depends_on("build"), cache.use("file:local"), sh("pytest"))``. Giving ``run=``
    together with positional steps raises ``ASYNC_PIPELINE_TASK_ARGUMENT_CONFLICT``.
    """
    fields = _given(
        {
            "description": description,
            "depends_on": depends_on,
            "inputs": inputs,
            "outputs": outputs,
            "cache": cache,
            "retry": retry,
            "timeout": timeout,
            "requires": requires,
            "env": env,
            "run": run,
            "steps": steps,
        }
    )
    fields.update(unknown)
    if items and ("run" in fields or "steps" in fields):
        given = "run=" if "run" in fields else "steps="
        raise DefinitionError(
            "ASYNC_PIPELINE_TASK_ARGUMENT_CONFLICT",
            f"task() got both {given} and positional steps; pass the steps one way",
            path="task",
        )
    return TaskDecl(fields, items)


def job(
    *,
    target: str | list[str] | tuple[str, ...] = MISSING,
    description: str = MISSING,
    trigger: str | list[str] | tuple[str, ...] = MISSING,
    environment: str | Mapping[str, str] = MISSING,
    requires: Mapping[str, object] = MISSING,
    env: Mapping[str, object] = MISSING,
    github: Mapping[str, object] = MISSING,
    mode: str = MISSING,
    execution: str = MISSING,
    **unknown: object,
) -> JobDecl:
    """Declare a job: a named entry point running ``target`` and what it depends on."""
    fields = _given(
        {
            "target": target,
            "description": description,
            "trigger": trigger,
            "environment": environment,
            "requires": requires,
            "env": env,
            "github": github,
            "mode": mode,
            "execution": execution,
        }
    )
    fields.update(unknown)
    return JobDecl(fields)
