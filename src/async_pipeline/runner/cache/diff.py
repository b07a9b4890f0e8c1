"""A task's inputs now against the inputs of its last passing cache entry: digests only.

Used by failure context packs (in the run) and by ``explain --diff-inputs`` / the MCP
``diff_inputs`` tool (read-only: the stat cache is consulted, never saved).

Read-only in every use, whatever the baseline pointer says: its key is used only if it is
a cache key as ``keys.task_key`` makes them (so it cannot name a path), and the entry is
read and verified here rather than through ``FileStore.get``, which removes an entry it
cannot decode. A damaged baseline entry is reported; the next passing run replaces it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.core.cache import FileCache
from async_pipeline.core.model import Pipeline, Task
from async_pipeline.runner._files import read_inside
from async_pipeline.runner.cache.engine import (
    BASELINES_DIR,
    all_outputs,
    cache_patterns,
    input_files,
)
from async_pipeline.runner.cache.file_store import ENTRY_SUFFIX, decode_entry
from async_pipeline.runner.cache.inputs import StatCache, Walker
from async_pipeline.runner.cache.store import Entry, is_digest

__all__ = ["diff_against_baseline"]

NEVER_PASSED = "the task has not passed with caching on yet"
MAX_REF_CHARS = 200  # far beyond any store ref; a longer one is not echoed back
_REF = re.compile(r"[A-Za-z0-9_-]+(:[A-Za-z0-9_.-]+)?\Z")  # a store ref, as core.cache reads it


def _baseline(root: Path, task_id: str) -> tuple[dict[str, Any] | None, str]:
    """The task's baseline pointer, checked field by field, or None and why there is none."""
    directory = root / BASELINES_DIR
    try:
        data = orjson.loads(read_inside(directory / f"{task_id}.json", directory)[0])
    except FileNotFoundError:
        return None, NEVER_PASSED
    except OSError as exc:
        return None, f"the baseline pointer cannot be read: {exc.strerror or exc}"
    except orjson.JSONDecodeError:
        return None, "the baseline pointer is not valid JSON"
    if not isinstance(data, dict):
        return None, "the baseline pointer is not a JSON object"
    key, ref, updated_at = data.get("key"), data.get("ref"), data.get("updatedAt")
    if not is_digest(key):  # keys.task_key: a sha256 hex digest, never a path
        return None, "the baseline pointer's key is not a cache key (64 lowercase hex digits)"
    if not isinstance(ref, str) or len(ref) > MAX_REF_CHARS or not _REF.match(ref):
        return None, "the baseline pointer's ref is not a cache store reference"
    if updated_at is not None and type(updated_at) not in (int, float):
        return None, "the baseline pointer's updatedAt is not a number"
    return {"key": key, "ref": ref, "updatedAt": updated_at}, ""


def _entry(directory: Path, key: str) -> tuple[Entry | None, str]:
    """The verified entry ``key`` of the file store in ``directory``; nothing is removed."""
    try:
        raw = read_inside(directory / f"{key}{ENTRY_SUFFIX}", directory)[0]
    except FileNotFoundError:
        return None, "the baseline's cache entry is gone (pruned or cleared)"
    except OSError as exc:
        return None, f"the baseline's cache entry cannot be read: {exc.strerror or exc}"
    # The store's own decoder (every digest verified), not FileStore.get, which also
    # removes an entry it cannot decode: inspection must not delete anything.
    entry = decode_entry(key, raw)
    if entry is None:
        return None, "the baseline's cache entry is damaged (the next passing run replaces it)"
    return entry, ""


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
    baseline, why = _baseline(root, task.id)
    if baseline is None:
        answer["reason"] = why
        return answer
    answer["baseline"] = baseline
    ref = baseline["ref"]
    store = pipeline.cache.all_stores().get(ref.split(":", 1)[0])
    if not isinstance(store, FileCache):
        answer["reason"] = f"the baseline lives in store {ref!r}, which is not read here"
        return answer
    entry, why = _entry(root / store.root, baseline["key"])
    if entry is None:
        answer["reason"] = why
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
