"""Job stamps: proving with ``stat`` alone that a job's cached results still hold.

A warm run of a 1,000-task job would otherwise load ``pipeline.py``, list every input
directory, look up 1,000 digests and read 1,000 cache entries, only to find that nothing
changed. After a run in which a task passed from a verified cache entry, the runner notes,
per task, the exact state that result was established for:

- the stat signature (size, mtime_ns, inode, ctime_ns) of each input file and each output,
  as the stat cache hashed it: the digest that went into the key (inputs) or matched the
  entry (outputs), and old enough not to be racy (see ``inputs.RACY_NS``);
- the signature of each directory listed to resolve its input globs (or, for a base that
  was absent, of its nearest existing ancestor), taken before the listing, so no file can
  have appeared, vanished or been renamed there since;
- its cache entry (path, inode, size) and its baseline file, so ``cache clear``, ``gc`` or
  another job's run pointing the baseline elsewhere is noticed; the entry's expiry (TTL);
- its dependencies: a task is up to date only if they all are.

For the whole job it notes what the import of ``pipeline.py`` read (each project file's
digest, each listed directory's entries: the same fingerprint the MCP server reloads on),
the package and Python versions, and a keyed digest of every environment variable the job's
declared env reads (secrets only inside that digest, never stored). Modules from outside the
project are covered coarsely: the signature of each directory on ``sys.path``, which
installing, upgrading or removing a package changes.

``check`` re-stats all of that. A task whose every signature matches is a cache hit with
the noted key, with no hashing, no key computation and no entry read. When every task of the
job is up to date the CLI records the run without importing ``pipeline.py`` or the runner at
all; otherwise the runner skips the proven tasks and runs the rest as usual. Anything that
cannot be proven (a changed file, a racy timestamp, a missing or corrupt stamp, another
version) just means the usual path: a stamp can only save work, never change a result.

Only tasks cached in a file store qualify (a memory store is empty in a new process and a
remote one can lose entries), and none with agent steps (their profile is chosen by the
environment at run time). Stamps are written by the runner under the run lock and are
derived state: ``cache clear`` removes them with the rest of the cache.

This module imports only the standard library: the CLI calls it before anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import marshal
import os
import stat as stat_module
import struct
import sys
import time
from array import array
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from async_pipeline.core.reload import Fingerprint
    from async_pipeline.redaction import Redactor
    from async_pipeline.runner.lock import RunLock
    from async_pipeline.runner.records import TaskResult
    from async_pipeline.runner.scheduler import Reporter

__all__ = [
    "STAMPS_DIR",
    "Preflight",
    "StampBuilder",
    "StampCheck",
    "check_stamp",
    "env_digest",
    "record_proven",
    "remove_stamp",
    "stamp_path",
]

STAMPS_DIR = Path(".async") / "cache" / "jobs"
STAMP_FORMAT = 3
# Signatures are packed, not tuples of ints: a stamp for 20,000 files loads as a few byte
# strings, which keeps a warm run's memory and load time down.
_FILE_SIG = struct.Struct("<QqQq")  # size, mtime_ns, inode, ctime_ns
_DIR_SIG = struct.Struct("<qqQ")  # mtime_ns, ctime_ns, inode
# A cache hit marks its entry as used (for ``gc --cache-days``); an up-to-date task only
# refreshes that mark when it is older than this, instead of writing on every run.
TOUCH_AFTER_SECONDS = 3600
_ENV_SALT = b"async-pipeline job stamp env v1"
# A stamp extending the previous one's tables is rebuilt from fresh ones once they have
# grown this much beyond their fresh size (rows that only dropped notes used).
_GROWTH = 1.25
_MAGIC = b"async-pipeline job stamp\n"


def _version() -> str:
    from async_pipeline import __version__

    return f"{__version__} {sys.version} {sys.byteorder}"


def stamp_path(root: Path, job_id: str) -> Path:
    """The stamp file of ``job_id`` (a digest: job ids may hold any character)."""
    name = hashlib.sha256(job_id.encode()).hexdigest()[:32]
    return root / STAMPS_DIR / f"{name}.stamp"


def env_digest(names: Iterable[str], env: Mapping[str, str]) -> str:
    """A keyed digest of the named variables' values (absent and empty differ)."""
    mac = hmac.new(_ENV_SALT, digestmod=hashlib.sha256)
    for name in sorted(set(names)):
        value = env.get(name)
        mac.update(f"{name}\0{'' if value is None else '=' + value}\0".encode())
    return mac.hexdigest()


class Preflight:
    """What a caller settled before the run: the run id, the run lock if it took it (the CLI
    does, to check the stamp before loading ``pipeline.py``), the stamp's check if it made
    it, and the fingerprint of the pipeline's import (so the run can check the stamp itself
    if nobody did, and write the next one)."""

    def __init__(
        self,
        run_id: str,
        config: Path,
        lock: RunLock | None = None,
        check: StampCheck | None = None,
        *,
        checked: bool = False,
        fingerprint: Fingerprint | None = None,
    ) -> None:
        self.run_id = run_id
        self.config = config
        self.lock = lock
        self.check = check
        self.checked = checked  # whether the stamp was already checked (under ``lock``)
        self.fingerprint = fingerprint


# Checking --------------------------------------------------------------------------------


class StampCheck:
    """What a stamp proves now: ``tasks`` (id -> the stamp's note) are up to date."""

    def __init__(self, data: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> None:
        self.data = data
        self.tasks = tasks

    @property
    def order(self) -> list[str]:
        """Every task of the job, in the order the stamped run recorded them."""
        return list(self.data["order"])

    @property
    def complete(self) -> bool:
        return len(self.tasks) == len(self.data["order"])

    @property
    def pipeline_name(self) -> str:
        return str(self.data["pipelineName"])

    @property
    def job_mode(self) -> str | None:
        mode = self.data["jobMode"]
        return None if mode is None else str(mode)


def check_stamp(root: Path, job_id: str, config: Path, env: Mapping[str, str]) -> StampCheck | None:
    """The job's stamp checked against the project as it is now; None when there is no
    usable stamp (absent, corrupt, another version, ``pipeline.py`` or the env changed)."""
    try:
        raw = stamp_path(root, job_id).read_bytes()
    except OSError:
        return None
    # marshal trusts its input (a few bytes can announce a tuple of billions of items): only
    # a whole file, as written, is decoded.
    head = len(_MAGIC) + 64
    if (
        not raw.startswith(_MAGIC)
        or raw[len(_MAGIC) : head] != hashlib.sha256(raw[head:]).hexdigest().encode()
    ):
        return None
    try:
        data = marshal.loads(raw[head:])
    except (EOFError, ValueError, TypeError):
        return None
    try:
        if not _current(data, job_id, config, env):
            return None
        return StampCheck(data, _up_to_date(root, data))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None  # not a stamp this code wrote: the usual path will write a fresh one


def _current(data: Any, job_id: str, config: Path, env: Mapping[str, str]) -> bool:
    from async_pipeline.core._fingerprint import unchanged

    return (
        isinstance(data, dict)
        and data.get("format") == STAMP_FORMAT
        and data["version"] == _version()
        and data["job"] == job_id
        and data["config"] == str(config)
        and data["env"] == env_digest(data["envNames"], env)
        and data["importEnv"] == env_digest(_import_env_names(data), os.environ)
        and data["prefix"] == [sys.prefix, sys.base_prefix]  # the same virtualenv
        and _path_sigs(data["importPath"]) == data["importPathSigs"]
        # When the import named files relative to the working directory, it must be the same.
        and data["processCwd"] in ("", os.getcwd())
        and unchanged(data["readFiles"], data["readDirs"], data["readStats"])
    )


def _import_path() -> list[str]:
    return [p for p in sys.path if p and os.path.isdir(p)]


def _import_env_names(data: dict[str, Any]) -> set[str]:
    """The variables importing ``pipeline.py`` read from the process environment, and every
    current one if it read them all."""
    return set(data["importEnvNames"]) | (set(os.environ) if data["importEnvAll"] else set())


def _path_sigs(paths: Iterable[str]) -> list[tuple[int, int] | None]:
    """(mtime_ns, inode) of each import path directory: an installed package shows there."""
    sigs: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            sigs.append(None)
            continue
        sigs.append((st.st_mtime_ns, st.st_ino))
    return sigs


def _up_to_date(root: Path, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    base = os.fspath(root)
    files_ok = _files_ok(base, data["files"], data["fileSigs"])
    dirs_ok = _dirs_ok(base, data["dirs"], data["dirSigs"])
    now = time.time()
    proven: dict[str, dict[str, Any]] = {}
    for note in data["tasks"]:  # dependencies come first
        if (
            all(d in proven for d in note["deps"])
            and all(files_ok[i] for i in _indices(note["files"]))
            and all(dirs_ok[i] for i in _indices(note["dirs"]))
            and (note["expires"] is None or now < note["expires"])
            and _same(f"{base}/{note['baseline'][0]}", note["baseline"][1:], _baseline_sig)
            and _entry_ok(f"{base}/{note['entry'][0]}", note["entry"][1:], now)
        ):
            proven[note["id"]] = note
    return proven


def _indices(packed: bytes) -> array[int]:
    return array("I", packed)


def _files_ok(base: str, paths: list[str], sigs: bytes) -> list[bool]:
    ok: list[bool] = []
    append = ok.append
    pack = _FILE_SIG.pack
    size = _FILE_SIG.size
    if len(sigs) != size * len(paths):
        raise ValueError("file signatures do not match the file list")
    offset = 0
    for path in paths:
        try:
            st = os.stat(f"{base}/{path}")
        except OSError:
            append(False)
        else:
            append(
                stat_module.S_ISREG(st.st_mode)
                and pack(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
                == sigs[offset : offset + size]
            )
        offset += size
    return ok


def _dirs_ok(base: str, paths: list[str], sigs: bytes) -> list[bool]:
    ok: list[bool] = []
    size = _DIR_SIG.size
    if len(sigs) != size * len(paths):
        raise ValueError("directory signatures do not match the directory list")
    for index, path in enumerate(paths):
        try:
            st = os.stat(f"{base}/{path}" if path else base)
        except OSError:
            ok.append(False)
            continue
        packed = _DIR_SIG.pack(st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        ok.append(packed == sigs[index * size : (index + 1) * size])
    return ok


def _baseline_sig(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _same(path: str, sig: tuple[int, ...], of: Any) -> bool:
    try:
        return bool(of(os.stat(path)) == tuple(sig))
    except OSError:
        return False


def _entry_ok(path: str, sig: tuple[int, ...], now: float) -> bool:
    """The entry is still the one the result came from; mark it used if it has been a while."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if (st.st_ino, st.st_size) != tuple(sig):
        return False
    if st.st_mtime < now - TOUCH_AFTER_SECONDS:
        try:
            os.utime(path)
        except OSError:
            pass
    return True


# Writing ---------------------------------------------------------------------------------


class StampBuilder:
    """Collects the notes of one run's up-to-date tasks, then writes the job's stamp."""

    def __init__(self, base: dict[str, Any] | None = None) -> None:
        """``base``: the previous stamp, when most of its notes will be carried. Its tables
        are then kept as they are, so carried notes need no re-indexing (entries only
        dropped notes used stay behind until a run starts from a fresh table)."""
        self.tasks: list[dict[str, Any]] = []
        if base is not None and len(base["files"]) > _GROWTH * base.get("freshRows", 0):
            base = None  # too many rows only dropped notes used: start from fresh tables
        self._base = base
        self._fresh_rows = base["freshRows"] if base is not None else None
        seed = (base["files"], base["fileSigs"]) if base else None
        self._files = _Table(_FILE_SIG, seed)
        self._dirs = _Table(_DIR_SIG, (base["dirs"], base["dirSigs"]) if base else None)

    def add(
        self,
        task_id: str,
        *,
        key: str,
        deps: Iterable[str],
        files: Mapping[str, tuple[int, ...]],
        dirs: Mapping[str, tuple[int, ...]],
        entry: tuple[str, int, int],
        baseline: tuple[str, int, int, int],
        expires: float | None,
        metadata: dict[str, Any],
        logs: tuple[bool, bool],
    ) -> None:
        self._note(
            task_id,
            key=key,
            deps=deps,
            files=self._files.add_all(files),
            dirs=self._dirs.add_all(dirs),
            entry=entry,
            baseline=baseline,
            expires=expires,
            metadata=metadata,
            logs=logs,
        )

    def carry(self, note: dict[str, Any], old: dict[str, Any]) -> None:
        """Keep a note proven from the previous stamp (its signatures all still hold)."""
        if (
            old is self._base and self._base is not None
        ):  # same tables: the note's indices stay valid
            self.tasks.append(note)
            return
        self._note(
            note["id"],
            key=note["key"],
            deps=note["deps"],
            files=self._files.copy_from(old["files"], old["fileSigs"], note["files"]),
            dirs=self._dirs.copy_from(old["dirs"], old["dirSigs"], note["dirs"]),
            entry=tuple(note["entry"]),
            baseline=tuple(note["baseline"]),
            expires=note["expires"],
            metadata=note["metadata"],
            logs=tuple(note["logs"]),
        )

    def _note(self, task_id: str, *, deps: Iterable[str], **fields: Any) -> None:
        self.tasks.append({"id": task_id, "deps": sorted(deps), **fields})

    def write(
        self,
        root: Path,
        job_id: str,
        *,
        order: list[str],
        pipeline_name: str,
        job_mode: str | None,
        config: Path,
        fingerprint: Fingerprint,
        env_names: Iterable[str],
        env: Mapping[str, str],
    ) -> None:
        from async_pipeline.runner._files import atomic_write_bytes

        names = sorted(set(env_names))
        imported = {*fingerprint.env_names, "PYTHONPATH"}  # where its imports resolve
        if fingerprint.env_all:
            imported |= set(os.environ)
        import_path = _import_path()
        data: dict[str, Any] = {
            "format": STAMP_FORMAT,
            "version": _version(),
            "job": job_id,
            "config": str(config),
            "pipelineName": pipeline_name,
            "jobMode": job_mode,
            "envNames": names,
            "env": env_digest(names, env),
            # What the import read comes from the process's environment, not the run's.
            "importEnvNames": sorted(imported),
            "importEnvAll": fingerprint.env_all,
            "importEnv": env_digest(imported, os.environ),
            "importPath": import_path,
            "importPathSigs": _path_sigs(import_path),
            "processCwd": fingerprint.cwd,
            "prefix": [sys.prefix, sys.base_prefix],
            "readFiles": dict(fingerprint.files),
            "readDirs": dict(fingerprint.dirs),
            "readStats": list(fingerprint.stats),
            "order": order,
            "freshRows": (
                self._fresh_rows if self._fresh_rows is not None else len(self._files.paths)
            ),
            "files": self._files.paths,
            "fileSigs": bytes(self._files.sigs),
            "dirs": self._dirs.paths,
            "dirSigs": bytes(self._dirs.sigs),
            "tasks": self.tasks,
        }
        payload = marshal.dumps(data)
        digest = hashlib.sha256(payload).hexdigest().encode()
        atomic_write_bytes(stamp_path(root, job_id), _MAGIC + digest + payload, durable=False)


class _Table:
    """Paths with their packed signatures; notes refer to rows by index. A row is a path
    *and* a signature: notes that saw one file in two states (a file rewritten during the
    run by a task the other does not depend on) keep both, and the next check tells which
    still holds, so no note inherits a state it was not proven for."""

    def __init__(self, layout: struct.Struct, seed: tuple[list[str], bytes] | None = None) -> None:
        self.layout = layout
        self.paths: list[str] = list(seed[0]) if seed else []
        self.sigs = bytearray(seed[1]) if seed else bytearray()
        # Each path's newest row, indexed on first use (a run that reran a few tasks looks
        # up a few dozen paths in a table of tens of thousands), and the rows added since.
        self._newest: dict[str, int] | None = None
        self._added: dict[tuple[str, bytes], int] = {}

    def _row(self, path: str, packed: bytes) -> int:
        newest = self._newest
        if newest is None:
            newest = self._newest = dict(zip(self.paths, range(len(self.paths)), strict=True))
        index = newest.get(path)
        size = self.layout.size
        if index is None or self.sigs[index * size : (index + 1) * size] != packed:
            index = self._added.get((path, packed))
            if index is None:
                # A state this table has not seen, unless an older row it was seeded with
                # holds it: a second row with the same path and state only costs its bytes.
                index = self._added[(path, packed)] = len(self.paths)
                self.paths.append(path)
                self.sigs += packed
            newest[path] = index
        return index

    def add_all(self, sigs: Mapping[str, tuple[int, ...]]) -> bytes:
        pack = self.layout.pack
        return array("I", (self._row(path, pack(*sig)) for path, sig in sigs.items())).tobytes()

    def copy_from(self, paths: list[str], sigs: bytes, packed: bytes) -> bytes:
        size = self.layout.size
        rows = (
            self._row(paths[old], sigs[old * size : (old + 1) * size]) for old in _indices(packed)
        )
        return array("I", rows).tobytes()


def remove_stamp(root: Path, job_id: str) -> None:
    try:
        stamp_path(root, job_id).unlink()
    except OSError:
        pass


def record_proven(
    result: TaskResult,
    note: Mapping[str, Any],
    logs: tuple[bytes, bytes] | None,
    *,
    logs_dir: Path,
    redactor: Redactor | None,
    max_log_bytes: int,
    reporter: Reporter | None,
) -> None:
    """Record a task this stamp proved up to date as a cache hit is recorded: its stored
    (stdout, stderr) ``logs`` replayed through ``redactor`` into ``logs_dir``, a passed hit
    with the noted key and metadata. The runner and the CLI's proven runs both come here."""
    from async_pipeline.runner.records import now_iso

    task_id = result.id
    result.status = "running"
    result.started_at = now_iso()
    if reporter:
        reporter.task_started(task_id)
    result.logs = {"stdout": None, "stderr": None}
    if logs is not None:
        assert redactor is not None, "replaying logs needs a redactor"
        from async_pipeline.runner.logs import TaskOutput, log_refs  # (redaction: only if used)

        echo = (lambda s, d: reporter.task_output(task_id, s, d)) if reporter else None
        output = TaskOutput(redactor, max_log_bytes, echo)
        output.stdout(logs[0])
        output.stderr(logs[1])
        result.logs = log_refs(task_id, output.store(logs_dir, task_id))
    result.cache_key = str(note["key"])
    result.cache_hit = True
    result.metadata = dict(note["metadata"])
    result.exit_code = 0
    result.status = "passed"
    result.finished_at = now_iso()
    result.duration_ms = 0
    if reporter:
        reporter.task_finished(result)
