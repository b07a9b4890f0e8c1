"""Where things live under a project's ``.async/`` directory, in one place.

The runner writes there; the query layer, the CLI and the MCP server only read. Both sides
name the same paths from here, so the layout cannot drift between writer and readers.
"""

from __future__ import annotations

import os
from pathlib import Path

from async_pipeline.errors import LoadError

__all__ = [
    "BASELINES_DIR",
    "CACHE_DIR",
    "CACHE_TASKS_DIR",
    "DEFAULT_CONFIG",
    "RECORD_FILE",
    "RUNS_DIR",
    "resolve_config",
    "run_ids",
]

RUNS_DIR = Path(".async") / "runs"
RECORD_FILE = "execution.json"
CACHE_DIR = Path(".async") / "cache"
CACHE_TASKS_DIR = CACHE_DIR / "tasks"
BASELINES_DIR = CACHE_DIR / "baselines"
DEFAULT_CONFIG = "pipeline.py"


def run_ids(root: Path) -> list[str]:
    """Ids of the runs that have a record, oldest first (run ids sort by start time)."""
    runs = root / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if (p / RECORD_FILE).is_file())


def resolve_config(config: str | os.PathLike[str] | None, cwd: Path) -> Path:
    """The pipeline file for ``--config`` (relative to ``cwd``) or ``cwd/pipeline.py``."""
    path = cwd / (config if config is not None else DEFAULT_CONFIG)
    given_dir = path.is_dir()
    if given_dir:
        path = path / DEFAULT_CONFIG
    if not path.is_file():
        if config is None:
            message = f"no {DEFAULT_CONFIG} in {cwd}; create one or pass --config PATH"
        elif given_dir:
            message = f"no {DEFAULT_CONFIG} in the directory {os.fspath(config)!r}"
        else:
            message = f"pipeline file {os.fspath(config)!r} does not exist (looked in {cwd})"
        raise LoadError("ASYNC_PIPELINE_CONFIG_NOT_FOUND", message, path=str(path))
    return path.resolve()
