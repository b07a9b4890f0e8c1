"""``gc`` and ``cache clear``: prune run records, old cache entries and dangling baselines.

Both hold the run lock while they work, so they never race a run.

A file store's directory may be one the user keeps their own files in (``root="src"``, even
``"."``), so neither ever removes a store directory wholesale: they delete only the files
the store writes there (see ``file_store.entry_files``), and a store directory only once it
is empty. ``.async/cache`` itself is ours and is removed whole.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.core.paths import BASELINES_DIR, CACHE_DIR, CACHE_TASKS_DIR
from async_pipeline.runner.cache.file_store import (
    ENTRY_SUFFIX,
    blob_files,
    entry_files,
    referenced_blobs,
    temporary_files,
)
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
            removed_entries += _prune_entries(root, directory, cache_days)
        removed_baselines = _prune_baselines(root, stores)
    return {
        "removedRuns": removed_runs,
        "removedCacheEntries": removed_entries,
        "removedBaselines": removed_baselines,
    }


def clear_cache(root: Path, *, store_dirs: Iterable[Path] = ()) -> dict[str, Any]:
    """Remove every local cache entry, baseline and the file stat cache.

    ``removed`` lists what went, relative to ``root``: a directory once emptied and removed,
    else each file removed from it.
    """
    removed: list[str] = []
    cache_dir = root / CACHE_DIR
    with RunLock(root, f"cache-clear-{new_run_id()}"):
        for directory in dict.fromkeys(store_dirs):
            removed += _clear_store(root, directory)
        if cache_dir.exists():
            shutil.rmtree(cache_dir)
            removed.append(_shown(cache_dir, root))
    return {"removed": removed}


def _clear_store(root: Path, directory: Path) -> list[str]:
    """Delete what the file store wrote in ``directory``, then the directory if empty."""
    if not directory.is_dir():
        return []
    strict = not _ours(root, directory)
    gone: list[Path] = []
    for path in (
        *entry_files(directory, strict=strict),
        *temporary_files(directory, strict=strict),
        *blob_files(directory, strict=strict),
    ):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        gone.append(path)
    # A directory left empty goes too; outside .async/ only if the store had files there
    # (an empty directory of the user's is still the user's).
    blobs = directory / "blobs"
    in_blobs = [p for p in gone if p.parent == blobs]
    if (in_blobs or not strict) and _remove_if_empty(blobs):
        gone = [p for p in gone if p.parent != blobs] + [blobs]
    if (gone or not strict) and not _holds_project(root, directory) and _remove_if_empty(directory):
        gone = [directory]
    return [_shown(path, root) for path in gone]


def _ours(root: Path, directory: Path) -> bool:
    """Whether ``directory`` (symlinks resolved) lies in the project's ``.async/``."""
    return Path(os.path.realpath(directory)).is_relative_to(os.path.realpath(root / ".async"))


def _holds_project(root: Path, directory: Path) -> bool:
    """Whether ``directory`` is the project root or one of its ancestors."""
    return Path(os.path.realpath(root)).is_relative_to(os.path.realpath(directory))


def _remove_if_empty(directory: Path) -> bool:
    """Remove a real (not symlinked) directory if it is empty; whether it was removed."""
    if directory.is_symlink():
        return False
    try:
        directory.rmdir()
    except OSError:  # not empty, not there, or not a directory
        return False
    return True


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _prune_entries(root: Path, directory: Path, days: int | None) -> list[str]:
    """Entries unused for ``days`` (a hit touches its file), stale temporaries, orphan
    blobs: only files the store writes (see ``file_store.entry_files``)."""
    if not directory.is_dir():
        return []
    strict = not _ours(root, directory)
    for path in temporary_files(directory, strict=strict):
        path.unlink(missing_ok=True)  # gc holds the run lock: no write is in flight
    now = time.time()
    removed: list[str] = []
    kept: list[Path] = []
    for path in entry_files(directory, strict=strict):
        try:
            used = path.stat().st_mtime
        except OSError:
            continue
        if days is not None and now - used > days * DAY_SECONDS:
            path.unlink(missing_ok=True)
            removed.append(path.name[: -len(ENTRY_SUFFIX)])
        else:
            kept.append(path)
    named = referenced_blobs(directory, kept)
    for blob in blob_files(directory, strict=strict, skip=named):
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
