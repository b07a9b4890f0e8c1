"""The task cache during a run: keys, lookups, restores, saves and baselines.

A hit replays the task's stored (redacted) logs and restores its outputs; anything that
cannot be verified is a miss and the task runs. A store that cannot be reached is dropped
for the rest of the run with one warning; the run itself never fails because of the cache.

A restore never overwrites a file that changed since the task last left it (see
``CacheEngine._restore``): outputs are left out of a task's key, so for a task that
rewrites its inputs in place a hit would otherwise undo the user's edit. A task whose
outputs match the pipeline file is not cached at all, with one warning.

An entry is data anyone with write access to a shared store can forge, so a restore
writes only files the task declares as outputs, under normalized paths outside ``.git/``
and ``.async/``, with permission bits only (see ``CacheEngine._trusted``); anything else
makes the hit a miss, with one warning.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.core.cache import FileCache, MemoryCache, RedisCache
from async_pipeline.core.env import EnvSecret, EnvVar
from async_pipeline.core.model import Pipeline, Task
from async_pipeline.core.paths import BASELINES_DIR, DEFAULT_CONFIG
from async_pipeline.core.steps import AgentStep
from async_pipeline.redaction import Redactor
from async_pipeline.runner._files import atomic_write_json, resolves_inside
from async_pipeline.runner.cache.file_store import FileStore
from async_pipeline.runner.cache.inputs import Globs, StatCache, Walker, settled
from async_pipeline.runner.cache.keys import step_identity, task_key
from async_pipeline.runner.cache.memory_store import MemoryStore
from async_pipeline.runner.cache.store import (
    CacheStore,
    Entry,
    EntryTooLargeError,
    OutputFile,
    StoreError,
    digest_bytes,
    restorable_path,
    valid_mode,
)

__all__ = ["BASELINES_DIR", "CacheEngine", "Prepared"]

DEFAULT_INPUTS = ("**",)
BASELINE_BATCH = 64
# A path from an entry is shown at most this long, and escaped, in a warning.
SHOWN_PATH_CHARS = 120
# Restored outputs are always readable and writable by their owner (the runner hashes
# them, a rerun of the task writes over them), whatever bits an entry names.
OWNER_READ_WRITE = 0o600


@dataclass
class Prepared:
    """A task's cache identity for this run, computed just before it would run."""

    task: Task
    key: str
    ref: str | None
    store: CacheStore | None
    input_files: list[str]
    inputs: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)
    # For the job stamp: directories listed for the inputs (see Walker), the outputs'
    # digests once known, the entry's creation time, and whether the entry is stored.
    dirs: dict[str, list[int]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None
    stored: bool = False


class CacheEngine:
    def __init__(
        self,
        root: Path,
        pipeline: Pipeline,
        env: Mapping[str, str],
        redactor: Redactor,
        *,
        force: bool,
        warn: Callable[[str], None],
    ) -> None:
        self.root = root
        self.pipeline = pipeline
        self.env = env
        self.redactor = redactor
        self.force = force
        self.warn = warn
        self.stat_cache = StatCache(root)
        self._stores: dict[str, CacheStore | None] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future[str | None]] = []
        self._dead: set[int] = set()
        self._hit_baselines: list[Prepared] = []
        # Directories are checked once per run; a restore never creates symlinks.
        self._inside_cache: dict[str, bool] = {}
        self._all_outputs = all_outputs(pipeline)
        self._declared: dict[str, Globs] = {}  # task id -> its outputs, normalized
        self._config = _config_file(root, pipeline)
        self.prepared: dict[str, Prepared] = {}

    # stores -------------------------------------------------------------------------------

    def _store(self, ref: str) -> CacheStore | None:
        name = ref.split(":", 1)[0]
        if name in self._stores:
            return self._stores[name]
        declared = self.pipeline.cache.all_stores()[name]
        store: CacheStore | None
        if isinstance(declared, FileCache):
            store = FileStore(self.root / declared.root, declared.ttl_ms)
        elif isinstance(declared, MemoryCache):
            store = MemoryStore(f"{self.root.resolve()}:{name}", declared.ttl_ms)
        else:
            store = self._redis(name, declared)
        self._stores[name] = store
        return store

    def _redis(self, name: str, declared: RedisCache) -> CacheStore | None:
        url = declared.url
        if isinstance(url, EnvSecret | EnvVar):
            value = self.env.get(url.name) or (url.default if isinstance(url, EnvVar) else None)
            if not value:
                self.warn(f"cache store {name!r}: {url.name} is not set; running without it")
                return None
            url = value
        try:
            from async_pipeline.runner.cache.redis_store import RedisStore

            return RedisStore(
                url,
                prefix=declared.prefix,
                ttl_ms=declared.ttl_ms,
                max_entry_bytes=declared.max_entry_bytes,
            )
        except StoreError as exc:
            reason = self.redactor.redact_text(str(exc))
            self.warn(f"cache store {name!r} unavailable ({reason}); running without it")
            return None

    def _drop(self, store: CacheStore, exc: StoreError) -> None:
        for name, known in list(self._stores.items()):
            if known is store:
                self._stores[name] = None
                self.warn(
                    f"cache store {name!r} unavailable ({self.redactor.redact_text(str(exc))}); "
                    "running without it"
                )

    # keys ---------------------------------------------------------------------------------

    def prepare(
        self,
        task: Task,
        *,
        declared_env: Mapping[str, str],
        secret_keys: set[str],
        dependency_keys: Mapping[str, str],
        agent_identity: Callable[..., str] | None = None,
    ) -> Prepared:
        ref = task.cache.ref if task.cache is not None else None
        patterns = cache_patterns(task) if ref is not None else task.resolved_inputs
        dirs: dict[str, list[int]] = {}
        files = input_files(task, patterns, Walker(self.root, dirs), self._all_outputs)
        inputs = self.stat_cache.digests(files)
        key = task_key(
            task,
            namespace=ref or "",
            steps=[step_identity(s, agent_identity) for s in task.steps],
            env=declared_env,
            secret_keys=secret_keys,
            inputs=inputs,
            dependencies=dependency_keys,
        )
        store = self._store(ref) if ref is not None else None
        if store is not None and self._holds_config(task):
            store = None  # not cached this run: no lookup, no store, never a stamp
        prepared = Prepared(task, key, ref, store, files, inputs, dirs=dirs)
        self.prepared[task.id] = prepared
        return prepared

    def _holds_config(self, task: Task) -> bool:
        """Whether the task's outputs match the pipeline file (then it is not cached: a hit
        would put a stored copy of pipeline.py back), warning once if so."""
        config = self._config
        if config is None or not task.outputs or not self._declared_outputs(task).select([config]):
            return False
        self.warn(
            f"cache: {task.id} is not cached: its outputs match the pipeline file {config}, "
            f"so a cache hit would put a stored copy back over any edit to it; declare "
            f"outputs that do not match {config}, or set cache=False"
        )
        return True

    def _inside(self, directory: Path) -> bool:
        """Whether a directory (as it resolves now, symlinks followed) is in the project."""
        key = os.fspath(directory)
        if key not in self._inside_cache:
            self._inside_cache[key] = resolves_inside(key, self.root)
        return self._inside_cache[key]

    def _input_files(self, task: Task, patterns: tuple[str, ...]) -> list[str]:
        return input_files(task, patterns, Walker(self.root), self._all_outputs)

    # hits ---------------------------------------------------------------------------------

    def lookup(self, prepared: Prepared) -> Entry | None:
        if prepared.store is None or self.force:
            return None
        try:
            entry = prepared.store.get(prepared.key)
        except StoreError as exc:
            self._drop(prepared.store, exc)
            return None
        if entry is None:
            return None
        if not self._restore(prepared.task, prepared.store, entry):
            return None
        prepared.outputs = {o.path: o.digest for o in entry.outputs}
        prepared.created_at = entry.created_at
        prepared.stored = True
        try:
            prepared.store.touch(entry.key)
        except StoreError:
            pass
        # Hits' baselines are checked in batches: one hand-off to the writer thread per task
        # measured more than the check itself on a warm run of 1,000 hits.
        self._hit_baselines.append(prepared)
        if len(self._hit_baselines) >= BASELINE_BATCH:
            self._flush_hit_baselines()
        return entry

    def stored_entry(self, task: Task, key: str) -> Entry | None:
        """The entry stored under ``key`` for ``task`` (verified), without restoring it."""
        ref = task.cache.ref if task.cache is not None else None
        store = self._store(ref) if ref is not None else None
        if store is None:
            return None
        try:
            return store.get(key)
        except StoreError as exc:
            self._drop(store, exc)
            return None

    def _flush_hit_baselines(self) -> None:
        if self._hit_baselines:
            batch, self._hit_baselines = self._hit_baselines, []
            self._in_background(self._quiet_baselines, batch)

    def _quiet_baselines(self, batch: list[Prepared]) -> str | None:
        for prepared in batch:
            self._baseline(prepared)
        return None

    def _declared_outputs(self, task: Task) -> Globs:
        """The task's output patterns as they match normalized paths (compiled once)."""
        globs = self._declared.get(task.id)
        if globs is None:
            globs = self._declared[task.id] = Globs(_normalized_patterns(task.outputs))
        return globs

    def _trusted(self, task: Task, entry: Entry) -> bool:
        """Whether a restore may write every output the entry names, warning once if not.

        The entry is data from a store anyone with write access to it may have written:
        each output must be a path :func:`restorable_path` allows (normalized, relative,
        outside ``.git/`` and ``.async/``), named once, matched by the task's declared
        outputs (excludes honoured), with permission bits for a mode. Linear in the number
        of outputs; no filesystem access.
        """
        outputs = entry.outputs
        if not outputs:
            return True
        if not all(valid_mode(o.mode) for o in outputs):
            return False  # damaged (the stores refuse such entries): a plain miss
        paths = [o.path for o in outputs]
        declared = set(self._declared_outputs(task).select(p for p in paths if restorable_path(p)))
        unknown = next((p for p in paths if p not in declared), None)
        if unknown is not None:
            self.warn(
                f"cache: the cached entry for {task.id} names a file that is not one of its "
                f"declared outputs ({_shown(unknown)}); nothing was restored and {task.id} runs"
            )
            return False
        if len(declared) != len(paths):
            self.warn(
                f"cache: the cached entry for {task.id} names an output more than once; "
                f"nothing was restored and {task.id} runs"
            )
            return False
        return True

    def _restore(self, task: Task, store: CacheStore, entry: Entry) -> bool:
        """Put the entry's outputs in place; False (a miss: the task runs) if one cannot be.

        A file already there with other bytes is overwritten only if it is still what the
        task last left (the outputs of its baseline entry): a product, say a build from
        another branch. Anything else there was changed since, by the user or another
        tool, perhaps an input the task rewrites in place (``sed -i`` over ``src/**``, whose
        outputs are left out of its key): running the task is right, restoring would undo
        the change. Every output is checked before any is written, and the entry as a
        whole first (:meth:`_trusted`).
        """
        if not self._trusted(task, entry):
            return False
        task_id = task.id
        writes: list[OutputFile] = []
        for output in entry.outputs:
            destination = self.root / output.path
            if not self._inside(destination.parent):
                self.warn(f"cache: not restoring {output.path}: it would leave the project")
                return False
            if os.path.islink(destination):
                writes.append(output)  # replaced by a file; the link target is not touched
                continue
            current = self.stat_cache.digest(output.path)
            if current == output.digest:
                continue
            if current is not None and self._last_outputs(task_id).get(output.path) != current:
                return False
            writes.append(output)
        for output in writes:
            try:
                data = store.read_output(entry, output)
            except StoreError as exc:
                self._drop(store, exc)
                return False
            if data is None:
                return False
            written_at = time.time_ns()
            try:
                _replace_file(self.root / output.path, data, output.mode)
                after = os.stat(self.root / output.path)
            except OSError as exc:  # e.g. a directory where the file goes, a full disk
                self.warn(
                    f"cache: could not restore {_shown(output.path)} for {task_id} "
                    f"({exc.strerror or type(exc).__name__}); {task_id} runs"
                )
                return False
            # The bytes just written are known: the next run need not hash them again.
            self.stat_cache.remember(output.path, after, after, output.digest, written_at)
        return True

    def _last_outputs(self, task_id: str) -> dict[str, str]:
        """The outputs (path -> digest) of the task's baseline entry: what it last left."""
        try:
            pointer = orjson.loads(self._baseline_path(task_id).read_bytes())
            key, ref = str(pointer["key"]), str(pointer["ref"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
            return {}
        if ref.split(":", 1)[0] not in self.pipeline.cache.all_stores():
            return {}
        store = self._store(ref)
        try:
            entry = store.get(key) if store is not None else None
        except StoreError:
            return {}
        return {o.path: o.digest for o in entry.outputs} if entry is not None else {}

    # saves --------------------------------------------------------------------------------

    def save(
        self, prepared: Prepared, result: Mapping[str, Any], stdout: bytes, stderr: bytes
    ) -> None:
        if prepared.store is None:
            return
        task = prepared.task
        listed = (
            prepared.input_files
            if _listings_unchanged(self.root, prepared.dirs)
            else self._input_files(task, cache_patterns(task))
        )
        current = self.stat_cache.digests(listed)
        if current != prepared.inputs:
            self.warn(f"cache: inputs of {task.id} changed while it ran; its result is not stored")
            return
        files: dict[str, Path] = {}
        outputs: list[OutputFile] = []
        for found in Globs(task.outputs).match(Walker(self.root)) if task.outputs else []:
            path = self.root / found
            relative = _normalized(found)  # as a restore will check it: no './', no '//'
            if relative in files:
                continue
            if not restorable_path(relative):
                self.warn(
                    f"cache: {task.id} not stored: a cache restore would refuse to write its "
                    f"output {_shown(relative)} (a backslash or a control character in the "
                    "name, or a .git directory on the way)"
                )
                return
            before = os.stat(path)
            read_at = time.time_ns()
            data = path.read_bytes()
            if self.redactor.redact(data) != data:
                self.warn(
                    f"cache: {relative} (an output of {task.id}) contains a secret; not stored"
                )
                return
            digest = digest_bytes(data)
            outputs.append(OutputFile(relative, digest, len(data), before.st_mode & 0o777))
            files[relative] = path
            # What was just read is what this stat describes if the stat did not move.
            self.stat_cache.remember(relative, before, os.stat(path), digest, read_at)
        entry = Entry(
            key=prepared.key,
            task_id=task.id,
            created_at=time.time(),
            result=dict(result),
            outputs=tuple(outputs),
            inputs=prepared.inputs,
            stdout=stdout,
            stderr=stderr,
            extra=prepared.extra,
        )
        prepared.outputs = {o.path: o.digest for o in outputs}
        prepared.created_at = entry.created_at
        self._in_background(self._publish, prepared, entry, files)

    def _publish(self, prepared: Prepared, entry: Entry, files: Mapping[str, Path]) -> str | None:
        """(Writer thread.) Store the entry, then point the baseline at it."""
        store = prepared.store
        if store is None or id(store) in self._dead:
            return None
        try:
            store.put(entry, files)
        except EntryTooLargeError as exc:
            return f"cache: {prepared.task.id} not stored: {exc}"
        except StoreError as exc:
            self._dead.add(id(store))
            return f"cache store {store.kind!r} unavailable ({exc}); running without it"
        self._baseline(prepared)
        prepared.stored = True
        return None

    def _in_background(self, work: Callable[..., str | None], *args: Any) -> None:
        """Cache writes leave the event loop's thread: no task waits on them, and on a
        filesystem where creating files is slow they overlap with the tasks' own work."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="async-pipeline-cache")
        self._pending.append(self._writer.submit(work, *args))

    def _baseline_path(self, task_id: str) -> Path:
        return self.root / BASELINES_DIR / f"{task_id}.json"

    def _baseline(self, prepared: Prepared) -> None:
        """Point the task's baseline at this entry (rewritten only when it changes)."""
        path = self._baseline_path(prepared.task.id)
        if _points_at(path, prepared):
            return
        atomic_write_json(
            path,
            {
                "taskId": prepared.task.id,
                "key": prepared.key,
                "ref": prepared.ref,
                "updatedAt": time.time(),
            },
            durable=False,
        )

    def stamp_note(self, task_id: str) -> dict[str, Any] | None:
        """(After :meth:`finish`.) What the job stamp needs to prove this task's result
        with stats alone, or None when it cannot be proven that way (see runner.stamp)."""
        prepared = self.prepared.get(task_id)
        if prepared is None or not prepared.stored or not isinstance(prepared.store, FileStore):
            return None
        task = prepared.task
        if any(isinstance(step, AgentStep) for step in task.steps):
            return None
        if len(prepared.inputs) != len(prepared.input_files):
            return None
        files: dict[str, tuple[int, ...]] = {}
        for relative, digest in (*prepared.inputs.items(), *prepared.outputs.items()):
            signature = self.stat_cache.settled(relative, digest)
            if signature is None:
                return None
            files[relative] = tuple(signature)
        dirs: dict[str, tuple[int, ...]] = {}
        for relative, (mtime, ctime, inode, listed_at) in prepared.dirs.items():
            if not settled(mtime, ctime, listed_at):
                return None
            dirs[relative] = (mtime, ctime, inode)
        root = os.fspath(self.root)
        entry_path = os.fspath(prepared.store.entry_path(prepared.key))
        baseline_path = self._baseline_path(task.id)
        if not _points_at(baseline_path, prepared):
            return None
        try:
            entry_stat = os.stat(entry_path)
            baseline_stat = os.stat(baseline_path)
        except OSError:
            return None
        if not entry_path.startswith(root + os.sep):
            return None
        ttl = prepared.store.ttl_ms
        return {
            "key": prepared.key,
            "files": files,
            "dirs": dirs,
            "entry": (entry_path[len(root) + 1 :], entry_stat.st_ino, entry_stat.st_size),
            "baseline": (
                os.fspath(baseline_path)[len(root) + 1 :],
                baseline_stat.st_ino,
                baseline_stat.st_size,
                baseline_stat.st_mtime_ns,
            ),
            "expires": None
            if ttl is None or prepared.created_at is None
            else prepared.created_at + ttl / 1000,
        }

    def finish(self) -> None:
        """Wait for background writes, report what they could not do, save the stat cache."""
        self._flush_hit_baselines()
        for future in self._pending:
            try:
                message = future.result()
            except OSError as exc:
                message = f"cache: a write failed: {exc}"
            if message:
                self.warn(self.redactor.redact_text(message))
        self._pending.clear()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        try:
            self.stat_cache.save()
        except OSError as exc:
            self.warn(f"cache: could not save the file stat cache: {exc}")


def _points_at(baseline: Path, prepared: Prepared) -> bool:
    """Whether the baseline file names ``prepared``'s entry (key and store ref)."""
    try:
        current = orjson.loads(baseline.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return (
        isinstance(current, dict)
        and current.get("key") == prepared.key
        and current.get("ref") == prepared.ref
    )


def _listings_unchanged(root: Path, dirs: Mapping[str, list[int]]) -> bool:
    """Whether every directory listed for a task's inputs still has the signature it had
    before it was listed, and that was old enough to trust (then its entries are the same:
    no file can have been added, removed or renamed there)."""
    base = os.fspath(root)
    for relative, (mtime, ctime, inode, listed_at) in dirs.items():
        if not settled(mtime, ctime, listed_at):
            return False
        try:
            st = os.stat(f"{base}/{relative}" if relative else base)
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_ctime_ns, st.st_ino) != (mtime, ctime, inode):
            return False
    return bool(dirs)


def all_outputs(pipeline: Pipeline) -> tuple[Globs, ...]:
    """What any task declares as output: the outputs of every task without ``!`` excludes
    as one set of patterns, then one per task with excludes (they apply to its own)."""
    plain: dict[str, None] = {}
    own: list[Globs] = []
    for task in pipeline.tasks.values():
        if any(o.startswith("!") for o in task.outputs):
            own.append(Globs(task.outputs))
        else:
            plain.update(dict.fromkeys(task.outputs))
    return (Globs(tuple(plain)), *own) if plain else tuple(own)


def input_files(
    task: Task, patterns: tuple[str, ...], walker: Walker, all_outputs: tuple[Globs, ...]
) -> list[str]:
    """Files matching the task's inputs, less its outputs. A task that declares no inputs
    gets every project file less what any task declares as output: products of the
    pipeline are not its sources."""
    if not patterns:
        return []
    minus = (Globs(task.outputs),) if task.resolved_inputs else all_outputs
    return Globs(patterns).match(walker, minus=minus)


def _config_file(root: Path, pipeline: Pipeline) -> str | None:
    """The pipeline file, relative to the project root (posix), if it lies inside it. A
    pipeline built in Python has no path: then the pipeline.py the CLI would load, if any."""
    if pipeline.config_path is None:
        return DEFAULT_CONFIG if (root / DEFAULT_CONFIG).is_file() else None
    config = Path(os.path.realpath(pipeline.config_path))
    base = Path(os.path.realpath(root))
    return config.relative_to(base).as_posix() if config.is_relative_to(base) else None


def cache_patterns(task: Task) -> tuple[str, ...]:
    """The input patterns a cached task is keyed on."""
    return task.resolved_inputs or DEFAULT_INPUTS


def _normalized(path: str) -> str:
    """A relative path or pattern without empty and '.' segments: ``./a//b`` is ``a/b``."""
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def _normalized_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """Output patterns as they match normalized paths (``.`` alone is every file)."""
    found = []
    for pattern in patterns:
        bang = "!" if pattern.startswith("!") else ""
        found.append(bang + (_normalized(pattern[len(bang) :]) or "**"))
    return tuple(found)


def _shown(path: str) -> str:
    """A path from an entry as a warning may quote it: escaped (repr), and cut short."""
    if len(path) <= SHOWN_PATH_CHARS:
        return repr(path)
    return f"{path[:SHOWN_PATH_CHARS]!r}... ({len(path)} characters)"


def _replace_file(destination: Path, data: bytes, mode: int) -> None:
    """Write beside the destination, then rename over it: never a half-written output.

    Only permission bits are set (never setuid, setgid or sticky), and always the
    owner's read and write.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.restore")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, (mode & 0o777) | OWNER_READ_WRITE)
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
