"""Reloading ``pipeline.py`` only when something it read has changed.

A long-lived process (the MCP server) answers every question about the pipeline as it is on
disk now. Re-importing a 1,000-task pipeline costs tens of milliseconds per question, so the
loaded pipeline is kept together with a fingerprint of everything its import read (see
``core._fingerprint``): the content of each file it opened (``pipeline.py``, the source of
every module it imported, any data file), the listing of each project directory it listed,
what each path it stat'ed looked like, and which environment variables it read. The next
question reuses it only if all of those are unchanged. The runner's job stamps keep the same
fingerprint. Nothing is trusted on timestamps alone.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from async_pipeline.core._fingerprint import (
    Listing,
    StatSig,
    file_digest,
    listing,
    stat_sig,
    unchanged,
)
from async_pipeline.core.loader import load_pipeline, resolve_config
from async_pipeline.core.model import Pipeline

__all__ = ["Fingerprint", "PipelineCache", "load_recorded"]

_recording = threading.local()
_hook_installed = False
_hook_lock = threading.Lock()


@dataclass
class _Reads:
    root: str
    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    stats: set[tuple[str, bool]] = field(default_factory=set)
    relative: bool = False  # whether any of it was named relative to the working directory


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
    path = _absolute(target, reads)
    if path is None or f"{os.sep}.async" in path or path.startswith(_PACKAGE):
        return  # this package's own modules: its version covers them
    if event == "open":
        if f"{os.sep}__pycache__{os.sep}" in path and path.endswith(".pyc"):
            # Imported from cached bytecode: what counts is the source it was compiled from.
            try:
                path = importlib.util.source_from_cache(path)
            except ValueError:
                pass
        reads.files.add(path)
    elif path == reads.root or path.startswith(reads.root + os.sep):
        reads.dirs.add(path)


def _absolute(target: object, reads: _Reads) -> str | None:
    if target is None or isinstance(target, int):
        return None
    try:
        name = os.fsdecode(target)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not os.path.isabs(name):
        reads.relative = True
    return os.path.abspath(name)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_real_stat = os.stat
_real_lstat = os.lstat


def _stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> Any:
    _note_stat(path, dir_fd, follow_symlinks)
    return _real_stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)


def _lstat(path: Any, *, dir_fd: int | None = None) -> Any:
    _note_stat(path, dir_fd, False)
    return _real_lstat(path, dir_fd=dir_fd)


def _note_stat(path: object, dir_fd: int | None, follow: bool) -> None:
    """(While recording.) ``Path.exists()`` and ``os.path.isfile()`` raise no audit event:
    user code's stats are seen through os.stat/os.lstat, which the import system never uses."""
    reads: _Reads | None = getattr(_recording, "reads", None)
    if reads is None or dir_fd is not None:
        return
    absolute = _absolute(path, reads)
    if absolute is not None and f"{os.sep}.async" not in absolute:
        reads.stats.add((absolute, follow))


class _EnvReads(MutableMapping[str, str]):
    """``os.environ`` while a pipeline loads: the same variables, with reads noted."""

    def __init__(self, inner: MutableMapping[str, str]) -> None:
        self.inner = inner
        self.names: set[str] = set()
        self.everything = False

    def __getitem__(self, key: str) -> str:
        self.names.add(key)
        return self.inner[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.names.add(key)
        return key in self.inner

    def __setitem__(self, key: str, value: str) -> None:
        self.inner[key] = value

    def __delitem__(self, key: str) -> None:
        del self.inner[key]

    def __iter__(self) -> Iterator[str]:
        self.everything = True
        return iter(self.inner)

    def __len__(self) -> int:
        self.everything = True
        return len(self.inner)

    def copy(self) -> dict[str, str]:
        self.everything = True
        return dict(self.inner)


@dataclass
class Fingerprint:
    """What one load of ``pipeline.py`` read (see the module docstring)."""

    files: dict[str, str | None]
    dirs: dict[str, Listing | None]
    stats: list[tuple[str, bool, StatSig | None]]
    env_names: set[str]
    env_all: bool
    cwd: str = ""  # the working directory, if the import named anything relative to it

    def current(self) -> bool:
        """Whether the files, listings and stats are as recorded (the env is the caller's
        to compare: a long-lived process has one environment)."""
        return unchanged(self.files, self.dirs, self.stats)


def _install_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # process-wide and permanent: it records only when asked
            _hook_installed = True


@dataclass
class _Entry:
    config: Path
    pipeline: Pipeline
    fingerprint: Fingerprint


class PipelineCache:
    """``load(config, cwd)``: the pipeline as on disk now, re-imported only when needed."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str | None, str], _Entry] = {}
        self._lock = threading.Lock()

    def load(self, config: str | None, cwd: Path) -> Pipeline:
        return self.load_fingerprinted(config, cwd)[0]

    def load_fingerprinted(self, config: str | None, cwd: Path) -> tuple[Pipeline, Fingerprint]:
        """The pipeline, and the fingerprint it is current for (a job stamp keeps it)."""
        path = resolve_config(config, cwd)
        key = (config, str(cwd))
        entry = self._entries.get(key)
        if entry is not None and entry.config == path and entry.fingerprint.current():
            return entry.pipeline, entry.fingerprint
        with self._lock:
            pipeline, fingerprint = load_recorded(config, cwd)
            self._entries[key] = _Entry(path, pipeline, fingerprint)
        return pipeline, fingerprint


_load_lock = threading.Lock()


def load_recorded(config: str | None, cwd: Path) -> tuple[Pipeline, Fingerprint]:
    """Load the pipeline and fingerprint what its import read (see the module docstring)."""
    path = resolve_config(config, cwd)
    _install_hook()
    reads = _Reads(str(path.parent))
    with _load_lock:  # os.stat and os.environ are process-wide: one recorded load at a time
        environ = _EnvReads(os.environ)
        os.stat, os.lstat, os.environ = _stat, _lstat, environ  # type: ignore[assignment]
        _recording.reads = reads
        try:
            pipeline = load_pipeline(config, cwd=cwd)
        finally:
            _recording.reads = None
            os.stat, os.lstat, os.environ = _real_stat, _real_lstat, environ.inner  # type: ignore[assignment]
    reads.files.add(str(path))
    return pipeline, Fingerprint(
        files={p: file_digest(p) for p in sorted(reads.files)},
        dirs={p: listing(p) for p in sorted(reads.dirs)},
        stats=[(p, follow, stat_sig(p, follow)) for p, follow in sorted(reads.stats)],
        env_names=environ.names,
        env_all=environ.everything,
        cwd=os.getcwd() if reads.relative else "",
    )


def environment_reads(fingerprint: Fingerprint, env: Mapping[str, str]) -> set[str]:
    """The variables a load's outcome may depend on: those it read, or all of them."""
    return fingerprint.env_names | (set(env) if fingerprint.env_all else set())
