"""``gc``: prune run records beyond a limit and cache entries unused for a number of days."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from async_pipeline.runner.lock import RunLock
from async_pipeline.runner.records import new_run_id, prune_runs

__all__ = ["CACHE_TASKS_DIR", "collect_garbage", "keep_runs"]

CACHE_TASKS_DIR = Path(".async") / "cache" / "tasks"
DEFAULT_KEEP_RUNS = 50
DAY_SECONDS = 86_400


def keep_runs(env: Mapping[str, str]) -> int:
    """``ASYNC_PIPELINE_KEEP_RUNS`` (default 50; 0 keeps every run)."""
    raw = env.get("ASYNC_PIPELINE_KEEP_RUNS", "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_KEEP_RUNS
    except ValueError:
        return DEFAULT_KEEP_RUNS


def collect_garbage(
    root: Path, *, keep: int | None, cache_days: int | None, env: Mapping[str, str]
) -> dict[str, Any]:
    """Holds the run lock while it prunes, so it never races a run."""
    with RunLock(root, f"gc-{new_run_id()}"):
        removed_runs = prune_runs(root, keep_runs(env) if keep is None else keep)
        removed_entries: list[str] = []
        if cache_days is not None:
            removed_entries = _prune_cache(root / CACHE_TASKS_DIR, cache_days)
    return {"removedRuns": removed_runs, "removedCacheEntries": removed_entries}


def _prune_cache(directory: Path, days: int) -> list[str]:
    if not directory.is_dir():
        return []
    cutoff = time.time() - days * DAY_SECONDS
    removed: list[str] = []
    for entry in sorted(directory.iterdir()):
        try:
            used = entry.stat().st_mtime
        except OSError:
            continue
        if used < cutoff:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed
