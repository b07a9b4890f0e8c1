"""Typed shapes of execution records (``.async/runs/<run-id>/execution.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["ExecutionRecord", "TaskError", "TaskResult"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class TaskError(_Model):
    code: str
    message: str


class AttemptResult(_Model):
    attempt: int
    exit_code: int | None
    duration_ms: int
    timed_out: bool


class TaskLogs(_Model):
    """Paths of the task's stored (redacted, tail-capped) logs, relative to the run directory.

    None for a stream the task wrote nothing to (no file is created for it)."""

    stdout: str | None
    stderr: str | None


class TaskResult(_Model):
    id: str
    status: Literal["pending", "running", "passed", "failed", "skipped", "cancelled"]
    attempts: int
    cache_key: str | None
    cache_hit: bool
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    exit_code: int | None
    error: TaskError | None
    metadata: dict[str, Any]
    attempt_results: list[AttemptResult]
    logs: TaskLogs | None


class CommandDecision(_Model):
    """A command the tool itself was asked to start, and what the command policy decided."""

    argv: list[str]
    decision: Literal["allow", "deny", "mock"]
    rule: int | None
    task: str | None
    code: str | None
    exit_code: int | None
    stdout: str
    stderr: str


class ExecutionRecord(_Model):
    """One run of a job: who ran what, when, and how each task ended."""

    schema_version: Literal[1]
    id: str
    pipeline_name: str
    job_id: str
    cwd: str
    started_at: str
    finished_at: str | None
    status: Literal["running", "passed", "failed"]
    mode: Literal["manual", "ci"]
    pid: int
    concurrency: int
    force: bool
    interrupted: str | None
    warnings: list[str]
    commands: list[CommandDecision]
    tasks: list[TaskResult]
