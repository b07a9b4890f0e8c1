"""What an import of ``pipeline.py`` read, and whether all of it is still as it was.

Shared by the MCP server's reload cache and the runner's job stamps. Only the standard
library is imported here: a warm ``run`` checks a fingerprint before anything else loads.

A fingerprint holds, for everything the import touched: each file it opened (including the
source behind every module it imported, wherever it lives) by content digest, each project
directory it listed by its entries, each path it stat'ed (``Path.exists()``, ``os.path``) by
type, size and mtime, and the names of the environment variables it read (or that it read
them all, by iterating ``os.environ``).
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_module
from collections.abc import Iterable, Mapping

__all__ = ["Listing", "StatSig", "file_digest", "listing", "stat_sig", "unchanged"]

Listing = tuple[str, ...]
StatSig = tuple[int, int, int]


def file_digest(path: str) -> str | None:
    """The file's sha256, or None when it cannot be read (a deleted file is a change too)."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def listing(path: str) -> Listing | None:
    """A directory's sorted entry names, or None when it cannot be listed."""
    try:
        return tuple(sorted(os.listdir(path)))
    except OSError:
        return None


def stat_sig(path: str, follow_symlinks: bool = True) -> StatSig | None:
    """(file type, size, mtime_ns) of a path, or None when it does not exist. A directory
    is noted by its type alone: its listing, if read, is fingerprinted as such, and its
    mtime moves with every file created in it (the run's own outputs included)."""
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except (OSError, ValueError):
        return None
    kind = stat_module.S_IFMT(st.st_mode)
    if kind == stat_module.S_IFDIR:
        return (kind, 0, 0)
    return (kind, st.st_size, st.st_mtime_ns)


def unchanged(
    files: Mapping[str, str | None],
    dirs: Mapping[str, Listing | None],
    stats: Iterable[tuple[str, bool, StatSig | None]] = (),
) -> bool:
    """Whether every file still has its digest, every directory its listing and every
    stat'ed path its signature."""
    return (
        all(stat_sig(p, follow) == sig for p, follow, sig in stats)
        and all(file_digest(p) == d for p, d in files.items())
        and all(listing(p) == names for p, names in dirs.items())
    )
