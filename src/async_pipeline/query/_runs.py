"""Answers about what ran: run lists, one run in detail, and what changed since a task passed.

Everything here only reads ``.async/``: inspection never writes there (the stat cache is
used but not saved), and never resolves a step or calls a deferred callback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.core.model import Pipeline
from async_pipeline.core.paths import RECORD_FILE, RUNS_DIR, run_ids
from async_pipeline.errors import QueryError
from async_pipeline.query._render import Data

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
MAX_LIMIT = 200


def _run_ids(root: Path) -> list[str]:
    """Newest first."""
    return run_ids(root)[::-1]


def _load(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        return None, f"cannot read the record: {exc.strerror or exc}"
    except orjson.JSONDecodeError:
        return None, "the record is not valid JSON"
    if not isinstance(data, dict):
        return None, "the record is not a JSON object"
    return data, None


def _summary(run_id: str, record: dict[str, Any] | None, error: str | None) -> Data:
    tasks = record.get("tasks", []) if record else []
    counts: dict[str, int] = {}
    for task in tasks if isinstance(tasks, list) else []:
        status = str(task.get("status")) if isinstance(task, dict) else "unknown"
        counts[status] = counts.get(status, 0) + 1
    cached = sum(1 for t in tasks if isinstance(t, dict) and t.get("cacheHit") is True)
    found: dict[str, Any] = record or {}
    get = found.get
    return {
        "id": run_id,
        "jobId": get("jobId"),
        "pipelineName": get("pipelineName"),
        "status": get("status"),
        "startedAt": get("startedAt"),
        "finishedAt": get("finishedAt"),
        "interrupted": get("interrupted"),
        "taskCounts": counts,
        "cachedTasks": cached,
        "error": error,
    }


def list_runs(root: Path, *, limit: int = 20, cursor: str | None = None) -> Data:
    """Runs newest first, ``limit`` at a time; ``cursor`` is the last id of the previous page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(
            "ASYNC_PIPELINE_INVALID_VALUE", f"limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )
    ids = _run_ids(root)
    if cursor is not None:
        _check_id(cursor)
        ids_after = [run_id for run_id in ids if run_id < cursor]  # ids sort by start time
    else:
        ids_after = ids
    page = ids_after[:limit]
    runs = [_summary(i, *_load(root / RUNS_DIR / i / RECORD_FILE)) for i in page]
    more = len(ids_after) > limit
    return {
        "total": len(ids),
        "runs": runs,
        "nextCursor": page[-1] if more and page else None,
    }


def _check_id(run_id: str) -> None:
    if not _RUN_ID.match(run_id):
        raise QueryError(
            "ASYNC_PIPELINE_UNKNOWN_RUN",
            f"{run_id!r} is not a run id (list them with `async-pipeline runs`)",
            path=run_id,
        )


def read_run(root: Path, run_id: str, *, max_log_bytes: int = 4096) -> Data:
    """A run's record, the tail of each task's logs (capped), and its failure context packs."""
    _check_id(run_id)
    if max_log_bytes < 0:
        raise QueryError("ASYNC_PIPELINE_INVALID_VALUE", "max_log_bytes must not be negative")
    run_dir = root / RUNS_DIR / run_id
    if not (run_dir / RECORD_FILE).is_file():
        recent = _run_ids(root)[:3]
        raise QueryError(
            "ASYNC_PIPELINE_UNKNOWN_RUN",
            f"no run {run_id!r} in {root / RUNS_DIR}",
            path=run_id,
            hint=("recent runs: " + ", ".join(recent)) if recent else "no runs recorded yet",
        )
    record, error = _load(run_dir / RECORD_FILE)
    if record is None:
        raise QueryError("ASYNC_PIPELINE_RUN_UNREADABLE", f"run {run_id}: {error}", path=run_id)
    logs: Data = {}
    for task in record.get("tasks") or []:
        if isinstance(task, dict) and isinstance(task.get("id"), str):
            logs[task["id"]] = {
                stream: _tail(run_dir / "logs" / f"{task['id']}.{stream}.log", max_log_bytes)
                for stream in ("stdout", "stderr")
            }
    packs: Data = {}
    context = run_dir / "context"
    if context.is_dir():
        for path in sorted(context.glob("*.json")):
            pack, _ = _load(path)
            if pack is not None:
                packs[path.stem] = pack
    return {"runId": run_id, "record": record, "logs": logs, "contextPacks": packs}


def _tail(path: Path, limit: int) -> Data:
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            handle.seek(max(0, size - limit))
            data = handle.read(limit)
    except OSError:
        return {"text": "", "bytes": 0, "truncated": False}
    text = data.decode("utf-8", errors="replace")
    return {"text": text, "bytes": size, "truncated": size > limit}


def diff_inputs(pipeline: Pipeline, task_id: str) -> Data:
    """What changed in a task's inputs since its last passing cache entry (digests only)."""
    from async_pipeline.query._data import check_task
    from async_pipeline.runner.cache.diff import diff_against_baseline

    task = check_task(pipeline, task_id)
    root = Path(pipeline.config_path).parent if pipeline.config_path else Path.cwd()
    return {
        "pipelineName": pipeline.name,
        "taskId": task_id,
        **diff_against_baseline(root, pipeline, task),
    }


def context_packs(root: Path, run_id: str) -> Data:
    """The failure context packs of one run (empty when every task passed)."""
    details = read_run(root, run_id, max_log_bytes=0)
    return {
        "runId": run_id,
        "jobId": details["record"].get("jobId"),
        "status": details["record"].get("status"),
        "packs": details["contextPacks"],
    }
