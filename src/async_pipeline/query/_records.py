"""Reading what the runner left under ``.async/runs``: only real files, only known shapes.

Whatever can write ``.async/`` can craft what inspection reads, so every read here checks
first that the file really lies inside its run's directory (symlinks resolved as they
stand; a run directory that leads out of ``.async/runs`` is not read at all) and that it is
a regular file (a FIFO would block the reader). A record or context pack is used only if
the fields the readers use have the types the runner writes (``runner.records``,
``runner.context_pack``); other fields are not checked, since consumers ignore unknown
fields. A task id names a log file only if it is a plain file name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.core.paths import RECORD_FILE, RUNS_DIR
from async_pipeline.runner._files import read_inside, resolves_inside

__all__ = [
    "PACK_SHAPE",
    "RECORD_SHAPE",
    "is_file_name",
    "load_json",
    "load_record",
    "read_inside",
    "run_directory",
    "shape_problem",
]


class _Const:
    """A shape matching exactly ``value`` (of exactly its type)."""

    def __init__(self, value: object) -> None:
        self.value = value


class _Nullable:
    """A shape matching null or ``shape``."""

    def __init__(self, shape: object) -> None:
        self.shape = shape


# A shape is a type (str, int, bool), _Const, _Nullable, [item shape] for a list, or
# {field: shape} for an object, where a field ending in "?" may be missing.
_TASK_ERROR = {"code?": str, "message?": str}
RECORD_SHAPE: Mapping[str, object] = {
    "schemaVersion": _Const(1),
    "id": str,
    "pipelineName": str,
    "jobId": str,
    "status": str,
    "startedAt": str,
    "finishedAt": _Nullable(str),
    "interrupted": _Nullable(str),
    "warnings?": [str],
    "tasks": [
        {"id": str, "status": str, "cacheHit?": bool, "error?": _Nullable(_TASK_ERROR)},
    ],
}
_DIFF_PATHS = _Nullable([{"path": str}])
PACK_SHAPE: Mapping[str, object] = {
    "error?": _Nullable(_TASK_ERROR),
    "logTail?": _Nullable({"stdout?": str, "stderr?": str}),
    "reproduce?": _Nullable({"command?": _Nullable(str), "env?": _Nullable([str])}),
    "inputs?": _Nullable(
        {
            "baselineMissing?": _Nullable(bool),
            "reason?": _Nullable(str),
            "added?": _DIFF_PATHS,
            "removed?": _DIFF_PATHS,
            "changed?": _DIFF_PATHS,
        }
    ),
    "claims?": _Nullable([str]),
}

_EXPECTED = {str: "a string", int: "an integer", bool: "true or false"}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def shape_problem(value: object, shape: object, where: str = "") -> str | None:
    """Why ``value`` does not have ``shape`` (naming the first field that differs), or None."""
    at = where or "the document"
    if isinstance(shape, _Nullable):
        return None if value is None else shape_problem(value, shape.shape, where)
    if isinstance(shape, _Const):
        if type(value) is type(shape.value) and value == shape.value:
            return None
        return f"{at} is {value!r:.40}, expected {shape.value!r}"
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{at} is {_kind(value)}, expected a list"
        for index, item in enumerate(value):
            problem = shape_problem(item, shape[0], f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    if isinstance(shape, Mapping):
        if not isinstance(value, dict):
            return f"{at} is {_kind(value)}, expected an object"
        for field, inner in shape.items():
            name = field.removesuffix("?")
            path = f"{where}.{name}" if where else name
            if name not in value:
                if field.endswith("?"):
                    continue
                return f"{path} is missing"
            problem = shape_problem(value[name], inner, path)
            if problem is not None:
                return problem
        return None
    if not isinstance(shape, type):
        raise TypeError(f"not a shape: {shape!r}")
    # bool is an int to Python, not to JSON: exact types, so true is not an integer.
    if type(value) is shape:
        return None
    return f"{at} is {_kind(value)}, expected {_EXPECTED.get(shape, shape.__name__)}"


def is_file_name(name: object) -> bool:
    """Whether ``name`` names a file in one directory: no separator, NUL, '.' or '..'."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\\0")
    )


def run_directory(root: Path, run_id: str) -> tuple[Path | None, str | None]:
    """``.async/runs/<run_id>`` if it really lies inside ``.async/runs``, else a reason."""
    runs = root / RUNS_DIR
    run_dir = runs / run_id
    inside = resolves_inside(run_dir, runs)
    if not inside or os.path.realpath(run_dir) == os.path.realpath(runs):
        return None, "its directory leads out of .async/runs (a symbolic link)"
    return run_dir, None


def load_json(path: Path, directory: Path, what: str) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object in ``path`` (a file of ``directory``), or None and why not."""
    try:
        data = orjson.loads(read_inside(path, directory)[0])
    except OSError as exc:
        return None, f"cannot read the {what}: {exc.strerror or exc}"
    except orjson.JSONDecodeError:
        return None, f"the {what} is not valid JSON"
    if not isinstance(data, dict):
        return None, f"the {what} is not a JSON object"
    return data, None


def load_record(root: Path, run_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """A run's execution record if it is readable and a valid record, else None and why.

    ``run_id`` must already be checked to be shaped like a run id.
    """
    run_dir, refused = run_directory(root, run_id)
    if run_dir is None:
        return None, f"cannot read the record: {refused}"
    record, error = load_json(run_dir / RECORD_FILE, run_dir, "record")
    if record is None:
        return None, error
    problem = shape_problem(record, RECORD_SHAPE)
    if problem is not None:
        return None, f"the record is not a valid execution record: {problem}"
    return record, None
