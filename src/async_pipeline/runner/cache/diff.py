"""A task's inputs now against the inputs of its last passing cache entry: digests only.

Used by failure context packs (in the run) and by ``explain --diff-inputs`` / the MCP
``diff_inputs`` tool (read-only: the stat cache is consulted, never saved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from async_pipeline.core.cache import FileCache
from async_pipeline.core.model import Pipeline, Task
from async_pipeline.runner.cache.engine import (
    BASELINES_DIR,
    all_outputs,
    cache_patterns,
    input_files,
)
from async_pipeline.runner.cache.file_store import FileStore
from async_pipeline.runner.cache.inputs import StatCache, Walker

__all__ = ["diff_against_baseline"]


def _baseline(root: Path, task_id: str) -> dict[str, Any] | None:
    try:
        data = orjson.loads((root / BASELINES_DIR / f"{task_id}.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def diff_against_baseline(
    root: Path, pipeline: Pipeline, task: Task, stat_cache: StatCache | None = None
) -> dict[str, Any]:
    """``baselineMissing`` (with a reason), or added/removed/changed paths with digests."""
    answer: dict[str, Any] = {
        "baselineMissing": True,
        "reason": None,
        "baseline": None,
        "added": [],
        "removed": [],
        "changed": [],
        "unchanged": 0,
    }
    baseline = _baseline(root, task.id)
    if baseline is None:
        answer["reason"] = "the task has not passed with caching on yet"
        return answer
    key, ref = str(baseline.get("key")), str(baseline.get("ref"))
    answer["baseline"] = {"key": key, "ref": ref, "updatedAt": baseline.get("updatedAt")}
    store = pipeline.cache.all_stores().get(ref.split(":", 1)[0])
    if not isinstance(store, FileCache):
        answer["reason"] = f"the baseline lives in store {ref!r}, which is not read here"
        return answer
    entry = FileStore(root / store.root).get(key)
    if entry is None:
        answer["reason"] = "the baseline's cache entry is gone (pruned or cleared)"
        return answer
    files = input_files(task, cache_patterns(task), Walker(root), all_outputs(pipeline))
    current = (stat_cache or StatCache(root)).digests(files)
    before = entry.inputs
    answer["baselineMissing"] = False
    answer["added"] = [
        {"path": p, "digest": current[p]} for p in sorted(current) if p not in before
    ]
    answer["removed"] = [
        {"path": p, "digest": before[p]} for p in sorted(before) if p not in current
    ]
    answer["changed"] = [
        {"path": p, "before": before[p], "after": current[p]}
        for p in sorted(current)
        if p in before and before[p] != current[p]
    ]
    answer["unchanged"] = sum(1 for p in current if before.get(p) == current[p])
    return answer
