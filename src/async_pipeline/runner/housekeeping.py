"""``gc`` and ``cache clear``: prune run records, old cache entries and dangling baselines.

Both hold the run lock while they work, so they never race a run.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.core.paths import BASELINES_DIR, CACHE_DIR, CACHE_TASKS_DIR
from async_pipeline.runner.cache.file_store import ENTRY_SUFFIX, referenced_blobs
from async_pipeline.runner.lock import RunLock
from async_pipeline.runner.records import keep_runs, new_run_id, prune_runs

__all__ = ["CACHE_DIR", "CACHE_TASKS_DIR", "clear_cache", "collect_garbage", "keep_runs"]

DAY_SECONDS = 86_400


def collect_garbage(
    root: Path,
    *,
    keep: int | None,
    cache_days: int | None,
    env: Mapping[str, str],
    file_stores: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Prune runs beyond ``keep``, entries unused for ``cache_days``, and dangling baselines.

    ``file_stores`` maps file-store names to their directories (default: ``file`` at
    ``.async/cache/tasks``).
    """
    stores = dict(file_stores or {"file": root / CACHE_TASKS_DIR})
    with RunLock(root, f"gc-{new_run_id()}"):
        removed_runs = prune_runs(root, keep_runs(env) if keep is None else keep)
        removed_entries: list[str] = []
        for directory in dict.fromkeys(stores.values()):
            removed_entries += _prune_entries(directory, cache_days)
        removed_baselines = _prune_baselines(root, stores)
    return {
        "removedRuns": removed_runs,
        "removedCacheEntries": removed_entries,
        "removedBaselines": removed_baselines,
    }


def clear_cache(root: Path, *, store_dirs: Iterable[Path] = ()) -> dict[str, Any]:
    """Remove every local cache entry, baseline and the file stat cache."""
    removed: list[str] = []
    with RunLock(root, f"cache-clear-{new_run_id()}"):
        for directory in dict.fromkeys([*store_dirs, root / CACHE_DIR]):
            if directory.exists():
                shutil.rmtree(directory)
                removed.append(_shown(directory, root))
    return {"removed": removed}


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _prune_entries(directory: Path, days: int | None) -> list[str]:
    """Entries unused for ``days`` (a hit touches its file), stale temporaries, orphan blobs."""
    if not directory.is_dir():
        return []
    now = time.time()
    removed: list[str] = []
    for path in sorted(directory.iterdir()):
        try:
            used = path.stat().st_mtime
        except OSError:
            continue
        if path.name.startswith(".tmp-"):
            path.unlink(missing_ok=True)  # gc holds the run lock: no write is in flight
        elif (
            path.name.endswith(ENTRY_SUFFIX)
            and days is not None
            and now - used > days * DAY_SECONDS
        ):
            path.unlink(missing_ok=True)
            removed.append(path.name[: -len(ENTRY_SUFFIX)])
    blobs = directory / "blobs"
    if blobs.is_dir():
        named = referenced_blobs(directory)
        for blob in blobs.iterdir():
            if blob.name not in named:
                blob.unlink(missing_ok=True)
    return removed


def _prune_baselines(root: Path, stores: Mapping[str, Path]) -> list[str]:
    """Baselines of file-store entries that no longer exist."""
    folder = root / BASELINES_DIR
    if not folder.is_dir():
        return []
    removed: list[str] = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = orjson.loads(path.read_bytes())
            key, ref = str(data["key"]), data.get("ref")
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            removed.append(path.stem)
            continue
        directory = stores.get(ref.split(":", 1)[0]) if isinstance(ref, str) else None
        if directory is None:
            continue  # a memory or remote entry: nothing here to check it against
        if not (directory / f"{key}{ENTRY_SUFFIX}").is_file():
            path.unlink(missing_ok=True)
            removed.append(path.stem)
    return removed
