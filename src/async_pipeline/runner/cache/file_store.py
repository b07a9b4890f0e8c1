"""The file store: entries under ``.async/cache/tasks/<key>/``, published by renaming a directory.

An entry directory holds ``result.json`` (the manifest, with the digests of everything
else), ``outputs.json``, ``inputs.json`` (the per-file digest manifest of the inputs that
produced it), the redacted ``stdout.log``/``stderr.log``, and ``files/<sha256>`` copies of
the outputs. It is built in a temporary directory and renamed into place, so a reader
sees a whole entry or none; a reader verifies every digest, so a damaged entry is a miss
and is removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.runner.cache.store import (
    ENTRY_FORMAT,
    Entry,
    OutputFile,
    StoreError,
    digest_bytes,
)

__all__ = ["FileStore", "crash_hook"]

# Tests set this to a callable invoked mid-write (between files), to kill the process there.
crash_hook: Any = None


def _dump(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class FileStore:
    """Entries as directories under ``directory``; entries older than ``ttl_ms`` are misses."""

    kind = "file"

    def __init__(self, directory: Path, ttl_ms: int | None = None) -> None:
        self.directory = directory
        self.ttl_ms = ttl_ms

    def _entry_dir(self, key: str) -> Path:
        return self.directory / key

    def get(self, key: str) -> Entry | None:
        folder = self._entry_dir(key)
        try:
            manifest = orjson.loads((folder / "result.json").read_bytes())
            outputs_raw = (folder / "outputs.json").read_bytes()
            inputs_raw = (folder / "inputs.json").read_bytes()
            stdout = (folder / "stdout.log").read_bytes()
            stderr = (folder / "stderr.log").read_bytes()
        except FileNotFoundError:
            if folder.exists():
                self.delete(key)
            return None
        except (OSError, orjson.JSONDecodeError):
            self.delete(key)
            return None
        entry = _verified(key, manifest, outputs_raw, inputs_raw, stdout, stderr)
        if entry is None:
            self.delete(key)
            return None
        if self.ttl_ms is not None and (time.time() - entry.created_at) * 1000 > self.ttl_ms:
            self.delete(key)
            return None
        return entry

    def read_output(self, entry: Entry, output: OutputFile) -> bytes | None:
        try:
            data = (self._entry_dir(entry.key) / "files" / output.digest).read_bytes()
        except OSError:
            data = None
        if data is None or len(data) != output.size or digest_bytes(data) != output.digest:
            self.delete(entry.key)
            return None
        return data

    def put(self, entry: Entry, files: Mapping[str, Path]) -> None:
        final = self._entry_dir(entry.key)
        if final.exists():
            return
        temporary = self.directory / f".tmp-{entry.key[:16]}-{secrets.token_hex(6)}"
        try:
            (temporary / "files").mkdir(parents=True)
            for output in entry.outputs:
                target = temporary / "files" / output.digest
                if not target.exists():
                    shutil.copyfile(files[output.path], target)
                    if crash_hook is not None:
                        crash_hook()
            outputs_raw = _dump(entry.manifest()["outputs"])
            inputs_raw = _dump(dict(entry.inputs))
            (temporary / "outputs.json").write_bytes(outputs_raw)
            (temporary / "inputs.json").write_bytes(inputs_raw)
            (temporary / "stdout.log").write_bytes(entry.stdout)
            (temporary / "stderr.log").write_bytes(entry.stderr)
            manifest = {
                **entry.manifest(),
                "outputsDigest": digest_bytes(outputs_raw),
                "inputsDigest": digest_bytes(inputs_raw),
            }
            (temporary / "result.json").write_bytes(_dump(manifest))
            if crash_hook is not None:
                crash_hook()
            try:
                os.rename(temporary, final)
            except OSError:
                if not final.exists():
                    raise
        except OSError as exc:
            raise StoreError(f"cannot write cache entry {entry.key[:12]}: {exc}") from exc
        finally:
            if temporary.exists():
                shutil.rmtree(temporary, ignore_errors=True)

    def delete(self, key: str) -> None:
        folder = self._entry_dir(key)
        if not folder.exists():
            return
        # Rename first so a concurrent reader never sees a half-deleted entry as whole.
        doomed = self.directory / f".del-{key[:16]}-{secrets.token_hex(6)}"
        try:
            os.rename(folder, doomed)
        except OSError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def touch(self, key: str) -> None:
        try:
            os.utime(self._entry_dir(key) / "result.json")
        except OSError:
            pass


def _verified(
    key: str,
    manifest: Any,
    outputs_raw: bytes,
    inputs_raw: bytes,
    stdout: bytes,
    stderr: bytes,
) -> Entry | None:
    """The entry if every recorded digest matches, else None."""
    if not isinstance(manifest, dict) or manifest.get("format") != ENTRY_FORMAT:
        return None
    if manifest.get("key") != key:
        return None
    logs = manifest.get("logs")
    if (
        manifest.get("outputsDigest") != digest_bytes(outputs_raw)
        or manifest.get("inputsDigest") != digest_bytes(inputs_raw)
        or not isinstance(logs, dict)
        or logs.get("stdout") != digest_bytes(stdout)
        or logs.get("stderr") != digest_bytes(stderr)
    ):
        return None
    try:
        outputs = tuple(
            OutputFile(str(o["path"]), str(o["digest"]), int(o["size"]), int(o["mode"]))
            for o in orjson.loads(outputs_raw)
        )
        inputs = orjson.loads(inputs_raw)
        if not isinstance(inputs, dict):
            return None
        return Entry(
            key=key,
            task_id=str(manifest["taskId"]),
            created_at=float(manifest["createdAt"]),
            result=dict(manifest.get("result") or {}),
            outputs=outputs,
            inputs={str(k): str(v) for k, v in inputs.items()},
            stdout=stdout,
            stderr=stderr,
            extra=dict(manifest.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return None
