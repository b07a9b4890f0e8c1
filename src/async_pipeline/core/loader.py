"""Load ``pipeline.py``: find it, import it, pick its pipeline, and explain any failure.

Errors point at the user's file and line, never at this package's internals.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import types
from dataclasses import replace
from pathlib import Path

from async_pipeline.core.model import Pipeline
from async_pipeline.core.paths import DEFAULT_CONFIG, resolve_config
from async_pipeline.errors import LoadError, PipelineError

__all__ = ["DEFAULT_CONFIG", "load_pipeline", "project_root", "resolve_config"]

_loaded = 0


def project_root(config: str | os.PathLike[str] | None, cwd: Path) -> Path:
    """Where a project's ``.async/`` lives, without importing its pipeline: the directory of
    its pipeline file (``--config``, else ``pipeline.py`` in ``cwd``), which must exist: a
    directory without one has no runs or cache, and nothing is created there."""
    return resolve_config(config, cwd).parent


def load_pipeline(
    config: str | os.PathLike[str] | None = None, *, cwd: str | os.PathLike[str] | None = None
) -> Pipeline:
    """Import the pipeline file and return its pipeline, with ``config_path`` set.

    The pipeline is the module's ``pipeline`` attribute, or its only ``Pipeline`` value.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    path = resolve_config(config, base)
    module = _execute(path, base)
    pipeline = _pick(module, path, base)
    return replace(pipeline, config_path=str(path))


def _display(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _execute(path: Path, base: Path) -> types.ModuleType:
    """Import the file as a module, the way Python imports any module.

    Bytecode is cached like any import (``__pycache__`` beside the file, or wherever
    ``PYTHONPYCACHEPREFIX`` points; ``PYTHONDONTWRITEBYTECODE`` turns it off), so a large
    generated pipeline is compiled once, not on every inspection.
    """
    global _loaded
    shown = _display(path, base)
    _loaded += 1
    name = f"async_pipeline_user_config_{_loaded}"
    _prefer_hash_checked_bytecode(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(
            "ASYNC_PIPELINE_CONFIG_ERROR", f"{shown}: cannot be imported as Python", path=shown
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        file = Path(exc.filename).resolve() if exc.filename else path
        line = (exc.text or "").strip()
        where = _display(file, base)
        if exc.lineno:  # None for what has no line: null bytes in the file
            where += f":{exc.lineno}" + (f":{exc.offset}" if exc.offset else "")
        raise LoadError(
            "ASYNC_PIPELINE_CONFIG_SYNTAX",
            f"{where}: {exc.msg}" + (f"\n    {line}" if line else ""),
            path=shown,
            location=where,
        ) from None
    except PipelineError as exc:
        exc.location = exc.location or _user_frame(exc, path.parent, base)
        raise
    except KeyboardInterrupt:
        raise  # Ctrl-C while importing: the CLI's own exit (130), not the file's fault
    except BaseException as exc:  # SystemExit and the file's own BaseException subclasses too
        where = _user_frame(exc, path.parent, base) or shown
        detail = str(exc) or type(exc).__name__
        raise LoadError(
            "ASYNC_PIPELINE_CONFIG_ERROR",
            f"{where}: {type(exc).__name__} while importing {shown}: {detail}",
            path=shown,
            location=where,
        ) from None
    finally:
        sys.path[:] = saved_path
        _forget_local_modules(path.parent, saved_modules)
        # The pipeline keeps its module's globals alive; a long-lived process (the MCP server)
        # reloading on every call must not accumulate one module per load.
        sys.modules.pop(name, None)
    return module


def _forget_local_modules(root: Path, before: set[str]) -> None:
    """Drop modules this load imported from the pipeline's own directory.

    The loaded pipeline keeps its references; the next load (of a source's pipeline with
    a helper of the same name, or of this file after an edit) imports them afresh.
    """
    local = [
        name
        for name in set(sys.modules) - before
        if _is_local(sys.modules.get(name.partition(".")[0]), root)
    ]
    for name in local:
        origin = getattr(sys.modules[name], "__file__", None)
        if isinstance(origin, str) and origin.endswith(".py"):
            # As for pipeline.py: an edit that keeps the size within the same second (or
            # restores the mtime) must not be served from the timestamp-checked bytecode.
            _prefer_hash_checked_bytecode(Path(origin))
        del sys.modules[name]


def _is_local(package: types.ModuleType | None, root: Path) -> bool:
    """Whether a top-level module was found directly in ``root`` (a file or a package)."""
    if package is None:
        return False
    top = package.__name__
    origin = getattr(package, "__file__", None)
    if origin is not None:
        file = Path(origin)
        return file.parent == root / top or (
            file.parent == root and file.name.partition(".")[0] == top
        )
    return any(Path(entry) == root / top for entry in getattr(package, "__path__", ()))


def _prefer_hash_checked_bytecode(path: Path) -> None:
    """Make the file's cached bytecode validate by source hash rather than by timestamp.

    A timestamp-checked cache compares whole-second mtimes and the size: an edit within the
    same second that keeps the size would be missed, and a long-lived process (the MCP
    server) reloading after each edit would serve the old pipeline. Once the cache file is
    hash-checked, Python keeps it so on every later import; hashing the source is cheap.
    """
    if sys.dont_write_bytecode:
        return
    try:
        cached = Path(importlib.util.cache_from_source(str(path)))
        with open(cached, "rb") as handle:
            flags = int.from_bytes(handle.read(8)[4:8], "little")
        if flags & 0b11 == 0b11:  # hash-based and checked: nothing to do
            return
    except (OSError, ValueError, NotImplementedError):
        pass
    import py_compile

    try:
        py_compile.compile(
            str(path),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
    except (py_compile.PyCompileError, OSError, ValueError):
        pass  # the import that follows reports syntax errors the usual way


def _user_frame(exc: BaseException, root: Path, base: Path) -> str | None:
    """The deepest traceback frame inside the user's project, as ``file:line``."""
    found: str | None = None
    for frame in traceback.extract_tb(exc.__traceback__):
        file = Path(frame.filename)
        if not file.is_absolute() or "site-packages" in file.parts:
            continue
        try:
            file.resolve().relative_to(root)
        except ValueError:
            continue
        if _is_internal(file):
            continue
        found = f"{_display(file.resolve(), base)}:{frame.lineno}"
    return found


def _is_internal(file: Path) -> bool:
    package = Path(__file__).resolve().parent.parent
    try:
        file.resolve().relative_to(package)
    except ValueError:
        return False
    return True


def _pick(module: types.ModuleType, path: Path, base: Path) -> Pipeline:
    shown = _display(path, base)
    named = module.__dict__.get("pipeline")
    if isinstance(named, Pipeline):
        return named
    if named is not None and not isinstance(named, types.ModuleType):
        raise LoadError(
            "ASYNC_PIPELINE_CONFIG_NO_PIPELINE",
            f"{shown}: 'pipeline' is a {type(named).__name__}, not a pipeline; assign "
            "define_pipeline(...) to it",
            path=shown,
        )
    found = {
        key: value
        for key, value in module.__dict__.items()
        if isinstance(value, Pipeline) and not key.startswith("__")
    }
    distinct = {id(v) for v in found.values()}
    if len(distinct) == 1:
        return next(iter(found.values()))
    if not found:
        raise LoadError(
            "ASYNC_PIPELINE_CONFIG_NO_PIPELINE",
            f"{shown} defines no pipeline; add `pipeline = define_pipeline(name=..., tasks=...)`",
            path=shown,
        )
    raise LoadError(
        "ASYNC_PIPELINE_CONFIG_AMBIGUOUS",
        f"{shown} defines several pipelines ({', '.join(sorted(found))}); name the one to use "
        "`pipeline`",
        path=shown,
    )
