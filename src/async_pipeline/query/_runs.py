"""Answers about what ran: run lists, one run in detail, and what changed since a task passed.

Everything here only reads ``.async/``: inspection never writes there (the stat cache is
used but not saved), and never resolves a step or calls a deferred callback. Records, logs
and packs are read through ``_records``, which reads only files really inside their run's
directory and only records of the runner's shape.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from async_pipeline.core.model import Pipeline
from async_pipeline.core.paths import RECORD_FILE, RUNS_DIR, run_ids
from async_pipeline.errors import QueryError
from async_pipeline.query._records import (
    PACK_SHAPE,
    is_file_name,
    load_json,
    load_record,
    read_inside,
    shape_problem,
)
from async_pipeline.query._render import Data

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
MAX_LIMIT = 200


def _run_ids(root: Path) -> list[str]:
    """Newest first; a directory whose name is no run id is not a run."""
    return [run_id for run_id in run_ids(root)[::-1] if _RUN_ID.match(run_id)]


# What a record still saying "running" is shown as once its run's process is gone.
ABANDONED = "abandoned"


def _live_run(root: Path) -> str | None:
    """The id of the run holding the project's run lock now, if any: the only run that can
    really be running, whatever other records still say."""
    from async_pipeline.runner.lock import lock_holder

    holder = lock_holder(root)
    run_id = holder.get("runId") if holder else None
    return run_id if isinstance(run_id, str) else None


def _as_shown(record: dict[str, Any], run_id: str, live: str | None) -> dict[str, Any]:
    """``record``, with a status of ``running`` shown as ``abandoned`` when its run does not
    hold the lock: its process ended without finalizing it (killed, or a hard exit)."""
    if record.get("status") == "running" and run_id != live:
        return {**record, "status": ABANDONED}
    return record


def _summary(run_id: str, record: dict[str, Any] | None, error: str | None) -> Data:
    """A listed run; ``record`` is a valid record (see ``_records``) or None with ``error``."""
    found: dict[str, Any] = record or {}
    tasks: list[dict[str, Any]] = found.get("tasks", [])
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task["status"]] = counts.get(task["status"], 0) + 1
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
        "cachedTasks": sum(1 for task in tasks if task.get("cacheHit") is True),
        "error": error,
    }


def list_runs(root: Path, *, limit: int = 20, cursor: str | None = None) -> Data:
    """Runs newest first, ``limit`` at a time; ``cursor`` is the last id of the previous page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(
            "ASYNC_PIPELINE_INVALID_VALUE", f"limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )
    ids = _run_ids(root)
    ids_after = ids if cursor is None else ids[_cursor_index(root, ids, cursor) + 1 :]
    page = ids_after[:limit]
    live = _live_run(root) if page else None
    runs = []
    for run_id in page:
        record, error = load_record(root, run_id)
        runs.append(_summary(run_id, record and _as_shown(record, run_id, live), error))
    more = len(ids_after) > limit
    return {
        "total": len(ids),
        "runs": runs,
        "nextCursor": page[-1] if more and page else None,
    }


def _cursor_index(root: Path, ids: list[str], cursor: str) -> int:
    """Where the run named by ``cursor`` is in ``ids``; a cursor names a listed run."""
    _check_id(cursor)
    try:
        return ids.index(cursor)
    except ValueError:
        raise QueryError(
            "ASYNC_PIPELINE_UNKNOWN_RUN",
            f"the cursor {cursor!r} names no run in {root / RUNS_DIR}",
            path=cursor,
            hint="pass nextCursor from the previous page; if its run was pruned since, "
            "list again without a cursor",
        ) from None


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
    record, error = load_record(root, run_id)
    if record is None:
        raise QueryError("ASYNC_PIPELINE_RUN_UNREADABLE", f"run {run_id}: {error}", path=run_id)
    record = _as_shown(record, run_id, _live_run(root))
    logs: Data = {}
    for task in record["tasks"]:
        # A task id names its log files only when it cannot name a path anywhere else.
        if is_file_name(task["id"]):
            logs[task["id"]] = {
                stream: _tail(
                    run_dir / "logs" / f"{task['id']}.{stream}.log", run_dir, max_log_bytes
                )
                for stream in ("stdout", "stderr")
            }
    return {
        "runId": run_id,
        "record": record,
        "logs": logs,
        "contextPacks": _packs(run_dir),
    }


def _packs(run_dir: Path) -> Data:
    """The run's context packs that are readable and have the runner's shape."""
    packs: Data = {}
    context = run_dir / "context"
    if not context.is_dir():
        return packs
    for path in sorted(context.glob("*.json")):
        pack, _ = load_json(path, run_dir, "context pack")
        if pack is not None and shape_problem(pack, PACK_SHAPE) is None:
            packs[path.stem] = pack
    return packs


def _tail(path: Path, run_dir: Path, limit: int) -> Data:
    try:
        data, size = read_inside(path, run_dir, tail=limit)
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
