"""Resolve input and output globs to files, and digest files fast and correctly.

Globs are relative to the project root: ``*`` and ``?`` stay within a path segment, ``**``
spans any number of segments, a leading ``!`` excludes, and a pattern naming a directory
means everything under it. ``.git/``, ``.async/`` and ``node_modules/`` are never inputs.

Digests come from a persisted stat cache (size, mtime_ns, inode, ctime_ns -> sha256, and
when it was hashed), so an unchanged file is not read again. An entry is trusted only if the
file's timestamps are older than the moment it was hashed by at least ``RACY_NS``: a file
modified within the same timestamp tick as its hashing could change without its stat
changing, so it is hashed again. One thread measured fastest here: a thread pool
over many small files was several times slower than reading them in turn.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat as stat_module
import time
import zlib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.runner._files import atomic_write_bytes

__all__ = [
    "IGNORED_DIRS",
    "RACY_NS",
    "Globs",
    "StatCache",
    "Walker",
    "digest_file",
    "settled",
]

IGNORED_DIRS = frozenset({".git", ".async", "node_modules"})
RACY_NS = 2_000_000_000


def settled(mtime_ns: int, ctime_ns: int, at_ns: int) -> bool:
    """Whether a file or directory could not have changed unseen since ``at_ns`` (when it
    was hashed or listed): its last change lies before that by at least RACY_NS."""
    return max(mtime_ns, ctime_ns) < at_ns - RACY_NS


STAT_CACHE_DIR = Path(".async") / "cache" / "stat"
_STAT_FORMAT = 3
# Entries are spread over this many files by directory, so a run that looks at a few files
# loads and rewrites a few small files, not one covering the whole project.
_SHARDS = 64


# Reads are sized by the file (a chunk at most): hashlib.file_digest allocates a fresh
# 256 KiB buffer per call, which for 20,000 source files of a few KB cost more than reading
# them (0.23 s against 0.13 s here).
_CHUNK = 1024 * 1024


def digest_file(path: str | os.PathLike[str], size: int | None = None) -> str:
    """The sha256 of the file's bytes. ``size``: its size from a stat just taken, which
    spares one fstat, and one more read when a read then stops short right at that size
    (the file ended there: there is nothing more to read)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if size is None:
            size = os.fstat(fd).st_size
        digest = hashlib.sha256()
        want = min(size + 1, _CHUNK)
        total = 0
        while chunk := os.read(fd, want):
            digest.update(chunk)
            total += len(chunk)
            if total == size and len(chunk) < want:
                break
            want = _CHUNK
        return digest.hexdigest()
    finally:
        os.close(fd)


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> tuple[str, re.Pattern[str] | None]:
    """Split a glob into its literal base directory and a regex for the rest (None: exact)."""
    parts = pattern.strip("/").split("/")
    base: list[str] = []
    while parts and not any(c in parts[0] for c in "*?["):
        base.append(parts.pop(0))
    if not parts:
        return "/".join(base), None
    regex = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:.*/)?"
            continue
        regex += _segment(part) + ("" if last else "/")
    return "/".join(base), re.compile(regex + r"\Z")


def _segment(part: str) -> str:
    out, i = "", 0
    while i < len(part):
        char = part[i]
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = part.find("]", i + 1)
            if end == -1:
                out += re.escape(char)
            else:
                body = part[i + 1 : end].replace("\\", "\\\\")
                out += "[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]"
                i = end
        else:
            out += re.escape(char)
        i += 1
    return out


class Walker:
    """Lists project files under a directory, remembering listings for the rest of the run.

    With ``dirs``, it also records each directory it lists (relative path -> ``[mtime_ns,
    ctime_ns, inode, listed_at_ns]``, taken just before the listing), and for a base that
    does not exist, its nearest existing ancestor: adding, removing or renaming anything
    there changes that signature, which is how a job stamp knows a listing still holds.
    """

    def __init__(self, root: Path, dirs: dict[str, list[int]] | None = None) -> None:
        self.root = root
        self.root_str = os.fspath(root)
        self._files: dict[str, list[str]] = {}
        self._dirs = dirs

    def files_under(self, base: str) -> list[str]:
        """Relative paths of all regular files (and file symlinks) under ``base``."""
        if base in self._files:
            return self._files[base]
        found: list[str] = []
        root = self.root_str
        stack = [(f"{root}/{base}" if base else root, base)]
        dirs = self._dirs
        while stack:
            directory, relative = stack.pop()
            if dirs is not None:
                self._record(directory, relative, top=relative == base)
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in IGNORED_DIRS:
                            stack.append((entry.path, name))
                    elif entry.is_file():
                        found.append(name)
                except OSError:
                    continue
        found.sort()
        self._files[base] = found
        return found

    def _record(self, directory: str, relative: str, *, top: bool) -> None:
        if not self._note(directory, relative) and top:
            self.note_absent(relative)

    def _note(self, path: str, relative: str) -> bool:
        """(Recording.) Note ``relative``'s signature, stat'ed now, before any listing;
        False if there is nothing there."""
        assert self._dirs is not None
        listed_at = time.time_ns()
        try:
            st = os.stat(path)
        except OSError:
            return False
        self._dirs[relative] = [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, listed_at]
        return True

    def note_absent(self, relative: str) -> None:
        """(Recording.) ``relative`` is not there: its creation would show in the nearest
        existing ancestor directory, so that one is recorded."""
        if self._dirs is None:
            return
        while relative:
            relative = relative.rpartition("/")[0]
            if self._note(f"{self.root_str}/{relative}" if relative else self.root_str, relative):
                return

    def forget(self) -> None:
        """Drop remembered listings (after a task may have written files)."""
        self._files.clear()


class Globs:
    """A task's patterns: includes and ``!`` excludes."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.include = [p for p in patterns if not p.startswith("!")]
        self.exclude = [p[1:] for p in patterns if p.startswith("!")]

    def match(self, walker: Walker, *, minus: Iterable[Globs] = ()) -> list[str]:
        """Files matched by the includes, less the excludes and what any of ``minus``
        matches (each with its own excludes: ``!dist/keep/**`` among outputs keeps those
        files out of the outputs, so in the inputs)."""
        chosen: dict[str, None] = {}
        for pattern in self.include:
            chosen.update(dict.fromkeys(_expand(pattern, walker)))
        for pattern in self.exclude:
            if not chosen:
                break
            for path in _filter(pattern, list(chosen)):
                del chosen[path]
        for other in minus:
            if not chosen:
                break
            for path in other.select(chosen):
                del chosen[path]
        return sorted(chosen)

    def select(self, paths: Iterable[str]) -> list[str]:
        """Those of ``paths`` (relative, files) the patterns match: included, not excluded."""
        listed = list(paths)
        chosen = dict.fromkeys(p for pattern in self.include for p in _filter(pattern, listed))
        for pattern in self.exclude:
            for path in _filter(pattern, list(chosen)):
                del chosen[path]
        return list(chosen)


def _expand(pattern: str, walker: Walker) -> list[str]:
    base, regex = _compile(pattern)
    if regex is None:
        if os.path.isfile(f"{walker.root_str}/{base}"):
            return [base]
        if base.split("/")[0] in IGNORED_DIRS:
            walker.note_absent(base)
            return []
        return walker.files_under(base)
    prefix = f"{base}/" if base else ""
    return [p for p in walker.files_under(base) if regex.match(p[len(prefix) :])]


def _filter(pattern: str, paths: list[str]) -> list[str]:
    base, regex = _compile(pattern)
    if regex is None:
        return [p for p in paths if p == base or p.startswith(f"{base}/")]
    prefix = f"{base}/" if base else ""
    return [p for p in paths if p.startswith(prefix) and regex.match(p[len(prefix) :])]


class StatCache:
    """Persisted (size, mtime_ns, inode, ctime_ns) -> (sha256, hashed_at_ns) for project files.

    Kept in ``.async/cache/stat/<shard>.json``, a shard per group of directories, each
    loaded on first use and written back only if it changed.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)
        self.directory = root / STAT_CACHE_DIR
        self._shards: dict[int, dict[str, list[Any]]] = {}
        self._by_directory: dict[str, tuple[int, dict[str, list[Any]]]] = {}
        self._dirty: set[int] = set()

    def _entries(self, relative: str) -> tuple[int, dict[str, list[Any]]]:
        """The shard holding ``relative``'s entry (all files of a directory share one)."""
        directory = relative.rpartition("/")[0]
        found = self._by_directory.get(directory)
        if found is None:
            index = zlib.crc32(directory.encode()) % _SHARDS
            entries = self._shards.get(index)
            if entries is None:
                entries = self._shards[index] = self._load(index)
            found = self._by_directory[directory] = (index, entries)
        return found

    def _shard_path(self, index: int) -> Path:
        return self.directory / f"{index:02x}.json"

    def _load(self, index: int) -> dict[str, list[Any]]:
        try:
            data = orjson.loads(self._shard_path(index).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        if isinstance(data, dict) and data.get("format") == _STAT_FORMAT:
            entries = data.get("entries")
            if isinstance(entries, dict):
                return entries
        return {}

    def digest(self, relative: str) -> str | None:
        """The file's sha256, from the cache when its stat is unchanged and not racy."""
        path = f"{self._root}/{relative}"  # plain strings: pathlib costs more than the stat
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat_module.S_ISREG(st.st_mode):
            return None
        shard, entries = self._entries(relative)
        known = entries.get(relative)
        signature = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
        if (
            known is not None
            and len(known) == 6
            and known[:4] == signature
            and settled(st.st_mtime_ns, st.st_ctime_ns, known[5])
        ):
            return str(known[4])
        hashed_at = time.time_ns()
        try:
            value = digest_file(path, st.st_size)
        except OSError:
            return None
        entries[relative] = [*signature, value, hashed_at]
        self._dirty.add(shard)
        return value

    def remember(
        self,
        relative: str,
        before: os.stat_result,
        after: os.stat_result,
        digest: str,
        read_at_ns: int,
    ) -> None:
        """Note a digest computed elsewhere from bytes read at ``read_at_ns`` between two
        stats of the file; only if the stats agree (the file did not change meanwhile)."""
        signature = [before.st_size, before.st_mtime_ns, before.st_ino, before.st_ctime_ns]
        if stat_module.S_ISREG(after.st_mode) and signature == [
            after.st_size,
            after.st_mtime_ns,
            after.st_ino,
            after.st_ctime_ns,
        ]:
            shard, entries = self._entries(relative)
            entries[relative] = [*signature, digest, read_at_ns]
            self._dirty.add(shard)

    def settled(self, relative: str, digest: str) -> list[int] | None:
        """The stat signature for which ``relative`` is known to have ``digest`` and could
        not have changed unseen (hashed at least RACY_NS after its last change), else None."""
        known = self._entries(relative)[1].get(relative)
        if (
            known is None
            or len(known) != 6
            or known[4] != digest
            or not settled(known[1], known[3], known[5])
        ):
            return None
        return [int(v) for v in known[:4]]

    def digests(self, paths: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for relative in paths:
            value = self.digest(relative)
            if value is not None:
                found[relative] = value
        return found

    def save(self) -> None:
        """Write back the shards that changed."""
        for index in sorted(self._dirty):
            data = {"format": _STAT_FORMAT, "entries": self._shards[index]}
            atomic_write_bytes(self._shard_path(index), orjson.dumps(data), durable=False)
        self._dirty.clear()
