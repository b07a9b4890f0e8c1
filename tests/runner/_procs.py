"""Find live processes by a marker in their command line (zombies do not count)."""

from __future__ import annotations

import random

from async_pipeline.runner._spawn import proc_stats


def marker_seconds() -> str:
    """A sleep duration unlikely to be used by anything else on the machine."""
    return str(random.randint(700_000, 899_999))


def live_processes_with(marker: str) -> list[int]:
    found: list[int] = []
    for pid, fields in proc_stats():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if marker.encode() in cmdline and fields[0] != b"Z":
            found.append(pid)
    return found
