"""Task sync: pipeline jobs (and opt-in raw tasks) as package.json scripts or Deno tasks.

The lock, ``.async-pipeline/tasks.lock.json``, remembers which entries sync wrote, so a later
sync may update or remove those and only those: an entry it did not write is never touched
(``ASYNC_PIPELINE_SYNC_CONFLICT``). It lives beside the GitHub sync because both share the
generated-file machinery in ``_files``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

import orjson

from async_pipeline.core.model import Pipeline, SyncTasks
from async_pipeline.errors import PipelineError
from async_pipeline.github._files import Managed
from async_pipeline.github._jsonc import members, set_entries
from async_pipeline.github._sync import lock_text

__all__ = ["LOCK", "task_files"]

LOCK = ".async-pipeline/tasks.lock.json"
_SKIP_DIRS = frozenset({"node_modules", ".git", ".async", ".async-pipeline", ".venv"})


def _section(path: str) -> str:
    return "scripts" if PurePosixPath(path).name == "package.json" else "tasks"


def _invalid(message: str, path: str = "sync.tasks") -> PipelineError:
    return PipelineError("ASYNC_PIPELINE_INVALID_VALUE", f"{path}: {message}", path=path)


def _find_package(root: Path, name: str, where: str) -> str:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        if "package.json" in files:
            path = Path(folder) / "package.json"
            try:
                data = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(data, dict) and data.get("name") == name:
                return path.relative_to(root).as_posix()
    raise _invalid(f"no package.json under the project is named {name!r}", where)


def _manifests(root: Path, settings: SyncTasks) -> list[str]:
    if settings.targets:
        return [
            _find_package(root, ref, f"sync.tasks.targets[{i}].package")
            if kind == "package"
            else ref
            for i, (kind, ref) in enumerate(settings.targets)
        ]
    found = []
    for runner in settings.runners:
        names = ("package.json",) if runner == "package" else ("deno.json", "deno.jsonc")
        present = [name for name in names if (root / name).is_file()]
        if not present:
            raise _invalid(f"the {runner} runner needs {' or '.join(names)} in the project")
        found.append(present[0])
    return found


def _commands(pipeline: Pipeline, settings: SyncTasks) -> dict[str, str]:
    prefix = settings.prefix
    jobs = settings.jobs if settings.jobs is not None else tuple(pipeline.jobs)
    commands = {f"{prefix}:{job}": f"async-pipeline run {job}" for job in jobs}
    commands.update({f"{prefix}:task:{t}": f"async-pipeline run-task {t}" for t in settings.tasks})
    commands.update({f"{prefix}:{k}": f"async-pipeline {v}" for k, v in settings.scripts.items()})
    return commands


def _previous(root: Path) -> dict[str, set[str]]:
    """Entry names the last sync wrote, per manifest path (nothing when there is no lock)."""
    try:
        lock = orjson.loads((root / LOCK).read_bytes())
        return {m["path"]: set(m["commands"]) for m in lock["manifests"]}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return {}


def task_files(pipeline: Pipeline, root: Path) -> list[Managed]:
    """Every manifest sync writes to, as it should read, then the lock."""
    from async_pipeline import __version__

    settings = pipeline.sync.tasks or SyncTasks()
    commands = _commands(pipeline, settings)
    previous = _previous(root)
    files: list[Managed] = []
    recorded = []
    for path in _manifests(root, settings):
        section = _section(path)
        try:
            # Bytes, not text mode: the file's own line endings, so a CRLF manifest
            # compares (and is written back) byte for byte.
            raw = (root / path).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise _invalid(f"{path} does not exist") from None
        crlf = "\r\n" in raw
        text = raw.replace("\r\n", "\n") if crlf else raw
        existing = {m.key: m.value for m in members(text, section, path) or []}
        owned = previous.get(path, set())
        for name, value in commands.items():
            if name in existing and name not in owned and existing[name] != value:
                raise PipelineError(
                    "ASYNC_PIPELINE_SYNC_CONFLICT",
                    f"{path}: {section} already has {name!r}, which task sync did not write",
                    path=f"{path}#{section}.{name}",
                    hint="rename or remove that entry, or choose another sync.tasks prefix",
                )
        stale: dict[str, str | None] = {n: None for n in owned - set(commands) if n in existing}
        updated = set_entries(text, section, {**stale, **commands}, path)
        if crlf:
            updated = updated.replace("\n", "\r\n")
        files.append(Managed(path, root / path, updated, root))
        recorded.append({"path": path, "section": section, "commands": commands})
    lock: dict[str, object] = {
        "schemaVersion": 1,
        "generator": {"name": "async-pipeline", "version": __version__},
        "config": PurePosixPath(pipeline.config_path or "pipeline.py").name,
        "prefix": settings.prefix,
        "runners": list(settings.runners),
        "targets": [{kind: ref} for kind, ref in settings.targets],
        "manifests": recorded,
        "renderedSha256": hashlib.sha256(
            orjson.dumps(recorded, option=orjson.OPT_SORT_KEYS)
        ).hexdigest(),
    }
    files.append(Managed(LOCK, root / LOCK, lock_text(lock), root))
    return files
