"""Execution records: ``.async/runs/<run-id>/execution.json`` and the task results inside.

Keys follow the documented record shape (camelCase). Consumers ignore unknown fields;
``schemaVersion`` changes only when the shape breaks.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from async_pipeline.core.paths import RECORD_FILE, RUNS_DIR, run_ids
from async_pipeline.runner._files import atomic_write_json, read_json

__all__ = [
    "RECORD_FILE",
    "RUNS_DIR",
    "SCHEMA_VERSION",
    "RunRecord",
    "TaskResult",
    "default_concurrency",
    "keep_runs",
    "new_run_id",
    "now_iso",
    "prune_runs",
    "run_ids",
    "run_mode",
]

SCHEMA_VERSION = 1
DEFAULT_KEEP_RUNS = 50


# More tasks at once than any machine runs; beyond it a typo, not a plan.
MAX_CONCURRENCY = 100_000


def default_concurrency() -> int:
    return max(1, os.cpu_count() or 1)


def check_concurrency(value: object) -> int | None:
    """``value`` as a run's concurrency (None: the default); a usage error unless it is a
    whole number from 1 to MAX_CONCURRENCY."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        from async_pipeline.errors import PipelineError

        raise PipelineError(
            "ASYNC_PIPELINE_USAGE",
            f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}",
        )
    return value


def run_mode(explicit: str | None, job_mode: str | None, env: Mapping[str, str]) -> str:
    """The record's ``mode``: as asked, else the job's, else ``ci`` when ``CI`` is set."""
    if explicit is not None:
        if explicit not in ("manual", "ci"):
            from async_pipeline.errors import PipelineError

            raise PipelineError(
                "ASYNC_PIPELINE_USAGE", f"mode must be 'manual' or 'ci', got {explicit!r}"
            )
        return explicit
    if job_mode is not None:
        return job_mode
    ci = env.get("CI", "").strip().lower()
    return "ci" if ci and ci not in ("0", "false", "no") else "manual"


DEFAULT_MAX_LOG_BYTES = 8 * 1024 * 1024
MIN_MAX_LOG_BYTES = 4096


def keep_runs(env: Mapping[str, str]) -> int:
    """``ASYNC_PIPELINE_KEEP_RUNS`` (default 50; 0 keeps every run)."""
    value = _setting(env, "ASYNC_PIPELINE_KEEP_RUNS", "0 keeps every run")
    return DEFAULT_KEEP_RUNS if value is None else value


def max_log_bytes(env: Mapping[str, str]) -> int:
    """``ASYNC_PIPELINE_MAX_LOG_BYTES``: default 8 MiB, 0 for unlimited, at least 4096."""
    value = _setting(env, "ASYNC_PIPELINE_MAX_LOG_BYTES", "0 keeps all output")
    if value is None:
        return DEFAULT_MAX_LOG_BYTES
    return 0 if value == 0 else max(value, MIN_MAX_LOG_BYTES)


def check_settings(env: Mapping[str, str]) -> None:
    """Before a run starts: a bad setting fails it now, not after its tasks ran."""
    keep_runs(env)
    max_log_bytes(env)


def _setting(env: Mapping[str, str], name: str, zero: str) -> int | None:
    """A whole-number setting from ``env`` (None: unset or empty); a usage error otherwise."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():
        return int(raw)
    from async_pipeline.errors import PipelineError

    raise PipelineError(
        "ASYNC_PIPELINE_USAGE",
        f"{name} must be a whole number of 0 or more ({zero}), got {raw[:40]!r}",
        hint=f"fix or unset {name}",
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """Sortable by start time: ``20261129T092626123Z-a1b2c3``."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}{int(now * 1000) % 1000:03d}Z-{secrets.token_hex(3)}"


@dataclass
class TaskResult:
    id: str
    status: str = "pending"  # pending, running, passed, failed, skipped, cancelled
    attempts: int = 0
    cache_key: str | None = None
    cache_hit: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    exit_code: int | None = None
    error: dict[str, str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempt_results: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, str | None] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "attempts": self.attempts,
            "cacheKey": self.cache_key,
            "cacheHit": self.cache_hit,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "durationMs": self.duration_ms,
            "exitCode": self.exit_code,
            "error": self.error,
            "metadata": self.metadata,
            "attemptResults": self.attempt_results,
            "logs": self.logs,
        }


@dataclass
class RunRecord:
    id: str
    pipeline_name: str
    job_id: str
    cwd: str
    mode: str
    concurrency: int
    force: bool
    tasks: list[TaskResult]
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    status: str = "running"
    interrupted: str | None = None
    warnings: list[str] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "id": self.id,
            "pipelineName": self.pipeline_name,
            "jobId": self.job_id,
            "cwd": self.cwd,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "status": self.status,
            "mode": self.mode,
            "pid": self.pid,
            "concurrency": self.concurrency,
            "force": self.force,
            "interrupted": self.interrupted,
            "warnings": self.warnings,
            "commands": self.commands,
            "tasks": [t.to_json() for t in self.tasks],
        }

    def write(self, run_dir: Path) -> None:
        atomic_write_json(run_dir / RECORD_FILE, self.to_json())


def prune_runs(root: Path, keep: int, *, protect: str | None = None) -> list[str]:
    """Delete the oldest run directories beyond ``keep`` (0 keeps everything)."""
    if keep <= 0:
        return []
    ids = [i for i in run_ids(root) if i != protect]
    budget = keep - (1 if protect else 0)
    doomed = ids[: max(0, len(ids) - max(0, budget))]
    for run_id in doomed:
        shutil.rmtree(root / RUNS_DIR / run_id, ignore_errors=True)
    return doomed


def load_record(root: Path, run_id: str) -> dict[str, Any]:
    data = read_json(root / RUNS_DIR / run_id / RECORD_FILE)
    if not isinstance(data, dict):
        raise ValueError("execution record is not a JSON object")
    return data
