"""Reloading ``pipeline.py`` only when something it read has changed.

A long-lived process (the MCP server) answers every question about the pipeline as it is on
disk now. Re-importing a 1,000-task pipeline costs tens of milliseconds per question, so the
loaded pipeline is kept together with a fingerprint of everything its import read: the
content of each project file it opened (``pipeline.py``, the modules it imports from the
project, any data file it reads) and the listing of each project directory it listed. The
next question reuses it only if all of those are unchanged; an edit, a new file in a listed
directory, or a deleted module means a fresh import. Nothing is trusted on timestamps.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from async_pipeline.core.loader import load_pipeline, resolve_config
from async_pipeline.core.model import Pipeline

__all__ = ["PipelineCache"]

_recording = threading.local()
_hook_installed = False
_hook_lock = threading.Lock()


@dataclass
class _Reads:
    root: str
    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    reads: _Reads | None = getattr(_recording, "reads", None)
    if reads is None or not args:
        return
    if event == "open":
        if len(args) > 1 and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
            return  # a write is not an input
        target = args[0]
    elif event in ("os.listdir", "os.scandir"):
        target = args[0]
    else:
        return
    if isinstance(target, int) or target is None:
        return
    try:
        path = os.path.abspath(os.fsdecode(target))
    except (TypeError, ValueError):
        return
    if not (path == reads.root or path.startswith(reads.root + os.sep)):
        return
    if f"{os.sep}__pycache__" in path or f"{os.sep}.async" in path:
        return
    (reads.files if event == "open" else reads.dirs).add(path)


def _install_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # process-wide and permanent: it records only when asked
            _hook_installed = True


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def _listing(path: str) -> tuple[str, ...] | None:
    try:
        return tuple(sorted(os.listdir(path)))
    except OSError:
        return None


@dataclass
class _Entry:
    config: Path
    pipeline: Pipeline
    files: dict[str, str | None]
    dirs: dict[str, tuple[str, ...] | None]

    def current(self) -> bool:
        return all(_digest(p) == d for p, d in self.files.items()) and all(
            _listing(p) == listing for p, listing in self.dirs.items()
        )


class PipelineCache:
    """``load(config, cwd)``: the pipeline as on disk now, re-imported only when needed."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str | None, str], _Entry] = {}
        self._lock = threading.Lock()

    def load(self, config: str | None, cwd: Path) -> Pipeline:
        path = resolve_config(config, cwd)
        key = (config, str(cwd))
        entry = self._entries.get(key)
        if entry is not None and entry.config == path and entry.current():
            return entry.pipeline
        with self._lock:
            _install_hook()
            reads = _Reads(str(path.parent))
            _recording.reads = reads
            try:
                pipeline = load_pipeline(config, cwd=cwd)
            finally:
                _recording.reads = None
            reads.files.add(str(path))
            self._entries[key] = _Entry(
                path,
                pipeline,
                {p: _digest(p) for p in sorted(reads.files)},
                {p: _listing(p) for p in sorted(reads.dirs)},
            )
        return pipeline
