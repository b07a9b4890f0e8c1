"""Find live processes by a marker in their command line (zombies do not count)."""

from __future__ import annotations

import os
import random


def marker_seconds() -> str:
    """A sleep duration unlikely to be used by anything else on the machine."""
    return str(random.randint(700_000, 899_999))


def live_processes_with(marker: str) -> list[int]:
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        state = stat[stat.rfind(b")") + 2 :].split()[0]
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry))
    return found
