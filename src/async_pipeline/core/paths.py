"""Where things live under a project's ``.async/`` directory, in one place.

The runner writes there; the query layer, the CLI and the MCP server only read. Both sides
name the same paths from here, so the layout cannot drift between writer and readers.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BASELINES_DIR",
    "CACHE_DIR",
    "CACHE_TASKS_DIR",
    "RECORD_FILE",
    "RUNS_DIR",
    "run_ids",
]

RUNS_DIR = Path(".async") / "runs"
RECORD_FILE = "execution.json"
CACHE_DIR = Path(".async") / "cache"
CACHE_TASKS_DIR = CACHE_DIR / "tasks"
BASELINES_DIR = CACHE_DIR / "baselines"


def run_ids(root: Path) -> list[str]:
    """Ids of the runs that have a record, oldest first (run ids sort by start time)."""
    runs = root / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if (p / RECORD_FILE).is_file())
