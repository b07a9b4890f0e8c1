"""The file store: one file per entry, small outputs inside it, larger ones as shared blobs.

``.async/cache/tasks/<key>.entry`` holds a digest of the rest of the file, the entry's
manifest (its result and the digests of everything else), then its sections:
``outputs.json``, ``inputs.json`` (the per-file digest manifest of the inputs that produced
it), the redacted ``stdout.log`` and ``stderr.log``, and ``outputs.bin``: the contents of
every output up to ``INLINE_MAX`` bytes, one after another. Larger outputs live in
``.async/cache/tasks/blobs/<sha256>``, written once however many entries share them. Every
file is written under a temporary name and renamed into place, blobs before the entry that
names them, so a reader sees a whole entry or none; every read is verified against its
digest, so a damaged entry is a miss and is removed.

A store directory may be shared with the user's own files (``root="src"``), so what
housekeeping may delete there is only what :func:`entry_files`, :func:`blob_files` and
:func:`temporary_files` recognise as written by this module, never anything else.

One file per entry rather than a directory of files, and small outputs inline rather than
as blobs: each file created costs far more than the bytes in it on this project's CI
filesystem (see adr/0002-file-store-layout.md).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Container, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.runner.cache.inputs import digest_file
from async_pipeline.runner.cache.store import (
    ENTRY_FORMAT,
    Entry,
    OutputFile,
    StoreError,
    digest_bytes,
    is_digest,
    outputs_from_manifest,
)

__all__ = [
    "ENTRY_SUFFIX",
    "INLINE_MAX",
    "MAGIC",
    "FileStore",
    "blob_files",
    "crash_hook",
    "decode_entry",
    "entry_files",
    "read_entry_logs",
    "referenced_blobs",
    "temporary_files",
]

MAGIC = b"async-pipeline cache entry\n"
ENTRY_SUFFIX = ".entry"
SECTIONS = ("outputs.json", "inputs.json", "stdout.log", "stderr.log")
INLINE_SECTION = "outputs.bin"
INLINE_MAX = 1024 * 1024
# Keys and blob names are sha256 hex digests; a temporary is named after the first 24
# characters of the file it becomes and 6 random bytes (see _temporary_name).
_TEMPORARY = re.compile(r"\.tmp-[0-9a-f]{24}-[0-9a-f]{12}\Z")

# Tests set this to a callable invoked between the files of a write, to kill the process there.
crash_hook: Any = None


def _crash_point() -> None:
    if crash_hook is not None:
        crash_hook()


class FileStore:
    """Entries under ``directory``; entries older than ``ttl_ms`` are misses."""

    kind = "file"

    def __init__(
        self, directory: Path, ttl_ms: int | None = None, *, inline_max: int = INLINE_MAX
    ) -> None:
        self.directory = directory
        self.blobs = directory / "blobs"
        self.ttl_ms = ttl_ms
        self.inline_max = inline_max

    def entry_path(self, key: str) -> Path:
        return self.directory / f"{key}{ENTRY_SUFFIX}"

    def get(self, key: str) -> Entry | None:
        if not is_digest(key):
            return None  # not a cache key: it must never name a path (a forged baseline)
        try:
            raw = self.entry_path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            self.delete(key)
            return None
        entry = decode_entry(key, raw)
        if entry is None:
            self.delete(key)
            return None
        if self.ttl_ms is not None and (time.time() - entry.created_at) * 1000 > self.ttl_ms:
            self.delete(key)
            return None
        return entry

    def read_output(self, entry: Entry, output: OutputFile) -> bytes | None:
        inline = entry.inline.get(output.path)
        if inline is not None:
            if len(inline) != output.size or digest_bytes(inline) != output.digest:
                self.delete(entry.key)
                return None
            return inline
        if not is_digest(output.digest):
            return None  # decode_entry admits none: never a path to read or remove
        blob = self.blobs / output.digest
        try:
            data = blob.read_bytes()
        except OSError:
            data = None
        if data is None or len(data) != output.size or digest_bytes(data) != output.digest:
            blob.unlink(missing_ok=True)  # wrong for every entry that names it
            self.delete(entry.key)
            return None
        return data

    def put(self, entry: Entry, files: Mapping[str, Path]) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            inline: dict[str, bytes] = {}
            for output in entry.outputs:
                if output.size <= self.inline_max:
                    inline[output.path] = Path(files[output.path]).read_bytes()
                    continue
                blob = self.blobs / output.digest
                if not blob.exists():
                    self.blobs.mkdir(exist_ok=True)
                    _publish(blob, Path(files[output.path]).read_bytes())
                    _crash_point()
            _publish(self.entry_path(entry.key), _encode(entry, inline))
        except OSError as exc:
            raise StoreError(f"cannot write cache entry {entry.key[:12]}: {exc}") from exc

    def delete(self, key: str) -> None:
        if is_digest(key):
            self.entry_path(key).unlink(missing_ok=True)

    def touch(self, key: str) -> None:
        if not is_digest(key):
            return
        try:
            os.utime(self.entry_path(key))
        except OSError:
            pass


def read_entry_logs(path: Path, key: str) -> tuple[bytes, bytes] | None:
    """The stored stdout and stderr of the entry file at ``path`` (verified), else None."""
    try:
        entry = decode_entry(key, path.read_bytes())
    except OSError:
        return None
    return None if entry is None else (entry.stdout, entry.stderr)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name[:24]}-{secrets.token_hex(6)}")


def _publish(path: Path, data: bytes) -> None:
    temporary = _temporary_name(path)
    try:
        with open(temporary, "wb") as handle:
            half = len(data) // 2
            handle.write(data[:half])
            _crash_point()
            handle.write(data[half:])
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink(missing_ok=True)


def _encode(entry: Entry, inline: Mapping[str, bytes]) -> bytes:
    """The entry file: ``inline`` (path -> contents) go into ``outputs.bin``, in order."""
    sections = {
        "outputs.json": orjson.dumps(entry.manifest()["outputs"]),
        "inputs.json": orjson.dumps(dict(entry.inputs), option=orjson.OPT_SORT_KEYS),
        "stdout.log": entry.stdout,
        "stderr.log": entry.stderr,
        INLINE_SECTION: b"".join(inline.values()),
    }
    layout: dict[str, list[Any]] = {}
    offset = 0
    for name, data in sections.items():
        layout[name] = [offset, len(data), digest_bytes(data)]
        offset += len(data)
    placed, at = [], 0
    for path, data in inline.items():
        placed.append([path, at, len(data)])
        at += len(data)
    manifest = {**entry.manifest(), "sections": layout, "inline": placed}
    rest = orjson.dumps(manifest) + b"\n" + b"".join(sections.values())
    return MAGIC + digest_bytes(rest).encode() + b"\n" + rest


def decode_entry(key: str, raw: bytes) -> Entry | None:
    """The entry if the file is whole and every digest matches, else None."""
    if not raw.startswith(MAGIC):
        return None
    start = len(MAGIC) + 65  # the digest of everything after it, and a newline
    if (
        raw[start - 1 : start] != b"\n"
        or raw[len(MAGIC) : start - 1] != digest_bytes(raw[start:]).encode()
    ):
        return None
    raw = raw[start:]
    header_end = raw.find(b"\n")
    if header_end < 0:
        return None
    try:
        manifest = orjson.loads(raw[:header_end])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != ENTRY_FORMAT:
        return None
    if manifest.get("key") != key:
        return None
    body = raw[header_end + 1 :]
    sections: dict[str, bytes] = {}
    try:
        layout = manifest["sections"]
        # Entries written before outputs went inline have no outputs.bin: still whole.
        names = (*SECTIONS, INLINE_SECTION) if INLINE_SECTION in layout else SECTIONS
        for name in names:
            offset, length, digest = layout[name]
            data = body[offset : offset + length]
            if len(data) != length or digest_bytes(data) != digest:
                return None
            sections[name] = data
        if offset + length != len(body):
            return None
        logs = manifest["logs"]
        if logs["stdout"] != digest_bytes(sections["stdout.log"]) or logs["stderr"] != digest_bytes(
            sections["stderr.log"]
        ):
            return None
        # Checked as the store writes them: a digest names a blob file read (and removed
        # when damaged), so one that is not a sha256 digest would name any path.
        outputs = outputs_from_manifest(orjson.loads(sections["outputs.json"]))
        inputs = orjson.loads(sections["inputs.json"])
        if not isinstance(inputs, dict):
            return None
        packed = sections.get(INLINE_SECTION, b"")
        inline: dict[str, bytes] = {}
        for path, at, length in manifest.get("inline") or []:
            if at < 0 or length < 0 or at + length > len(packed):
                return None
            inline[str(path)] = packed[at : at + length]
        return Entry(
            key=key,
            task_id=str(manifest["taskId"]),
            created_at=float(manifest["createdAt"]),
            result=dict(manifest.get("result") or {}),
            outputs=outputs,
            inputs={str(k): str(v) for k, v in inputs.items()},
            stdout=sections["stdout.log"],
            stderr=sections["stderr.log"],
            extra=dict(manifest.get("extra") or {}),
            inline=inline,
        )
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return None


def referenced_blobs(directory: Path, entries: Iterable[Path] | None = None) -> set[str]:
    """Digests named by the entries in ``directory``, or by ``entries`` (paths of entry
    files) when given; unreadable entries name none."""
    named: set[str] = set()
    for path in directory.glob(f"*{ENTRY_SUFFIX}") if entries is None else entries:
        try:
            entry = decode_entry(path.name[: -len(ENTRY_SUFFIX)], path.read_bytes())
        except OSError:
            continue
        if entry is not None:
            named.update(o.digest for o in entry.outputs if o.path not in entry.inline)
    return named


# What the store wrote ------------------------------------------------------------------
#
# ``strict``: the directory may hold the user's files too (a store root outside .async/),
# so a name is not enough: an entry must be named by a key and start with MAGIC, a
# temporary must carry the exact name _publish gives it, a blob must be named by the
# digest of its bytes. Without it (a directory under .async/, all of it ours) names do:
# ``*.entry``, ``.tmp-*``, digest-named blobs. Either way only regular files (never a
# symlink, never a directory) directly in the directory or in its ``blobs/`` are listed.


def _regular_files(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as listing:
            found = []
            for entry in listing:
                try:
                    if entry.is_file(follow_symlinks=False):
                        found.append(entry)
                except OSError:
                    continue
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    return sorted(found, key=lambda e: e.name)


def _blobs_directory(directory: Path) -> Path | None:
    blobs = directory / "blobs"
    return blobs if blobs.is_dir() and not blobs.is_symlink() else None


def _starts_with_magic(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def entry_files(directory: Path, *, strict: bool = True) -> list[Path]:
    """The entry files the store wrote in ``directory``, by name."""
    found = []
    for entry in _regular_files(directory):
        name = entry.name
        if not name.endswith(ENTRY_SUFFIX):
            continue
        if strict and not (
            is_digest(name[: -len(ENTRY_SUFFIX)]) and _starts_with_magic(entry.path)
        ):
            continue
        found.append(Path(entry.path))
    return found


def temporary_files(directory: Path, *, strict: bool = True) -> list[Path]:
    """Temporaries of unfinished writes, in ``directory`` and in its ``blobs/``."""
    found = []
    blobs = _blobs_directory(directory)
    for folder in (directory,) if blobs is None else (directory, blobs):
        for entry in _regular_files(folder):
            name = entry.name
            if _TEMPORARY.match(name) if strict else name.startswith(".tmp-"):
                found.append(Path(entry.path))
    return found


def blob_files(directory: Path, *, strict: bool = True, skip: Container[str] = ()) -> list[Path]:
    """The blobs in ``directory/blobs`` but those named in ``skip``. Strict, each is hashed
    (only what is left after ``skip``) to check it is what its name says."""
    blobs = _blobs_directory(directory)
    if blobs is None:
        return []
    found = []
    for entry in _regular_files(blobs):
        name = entry.name
        if name in skip or not is_digest(name):
            continue
        if strict:
            try:
                if digest_file(entry.path) != name:
                    continue
            except OSError:
                continue
        found.append(Path(entry.path))
    return found
