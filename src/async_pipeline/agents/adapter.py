"""Where a CLI adapter's command is found: the first argv element of a profile's ``command``.

Shared by the run (to say why an adapter exited 127) and by ``doctor`` (to say so before a run).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

__all__ = ["NOT_FOUND_EXIT_CODE", "find_adapter"]

# What a POSIX shell exits with when it cannot find the command it was asked to run.
NOT_FOUND_EXIT_CODE = 127


def find_adapter(program: str, *, cwd: Path, env: Mapping[str, str]) -> str | None:
    """The executable ``program`` names, as the task's shell would find it, or None.

    A name with a slash is a path (relative to the task's directory); any other name is
    looked up on the ``PATH`` of ``env``.
    """
    if "/" in program:
        candidate = Path(program) if os.path.isabs(program) else cwd / program
        found = candidate.is_file() and os.access(candidate, os.X_OK)
        return str(candidate) if found else None
    return shutil.which(program, path=env.get("PATH", os.defpath))
