"""Input diffs are read-only whatever the baseline pointer says.

``diff_inputs`` (MCP) and ``explain --diff-inputs`` (CLI) follow a baseline pointer under
``.async/cache/baselines`` to a cache entry. A pointer can be crafted, and an entry can be
damaged: either way the answer is ``baselineMissing`` with a reason, and nothing on disk,
in the repository or outside it, is written or removed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import query
from async_pipeline.core.loader import load_pipeline
from tests.conftest import run_cli

PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="diff",
    tasks={"build": task(sh("cat src/*.txt"), inputs=["src/*.txt"], cache=True)},
    jobs={"build": job(target="build")},
)
"""


@pytest.fixture
def passed(tmp_path: Path) -> Path:
    """A project (in ``tmp_path/repo``) whose ``build`` passed once, leaving a baseline."""
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "pipeline.py").write_text(PIPELINE)
    (root / "src" / "a.txt").write_text("a\n")
    assert run_cli(["run", "build"], root).code == 0
    return root


def _pointer(root: Path) -> Path:
    return root / ".async" / "cache" / "baselines" / "build.json"


def _entry(root: Path) -> Path:
    key = json.loads(_pointer(root).read_text())["key"]
    return root / ".async" / "cache" / "tasks" / f"{key}.entry"


def _files(top: Path) -> dict[str, bytes]:
    """Every file under ``top`` (symlinks as their targets' names), to compare before/after."""
    return {
        str(p.relative_to(top)): str(p.readlink()).encode() if p.is_symlink() else p.read_bytes()
        for p in sorted(top.rglob("*"))
        if p.is_symlink() or p.is_file()
    }


def _diff(root: Path) -> dict[str, Any]:
    """The answer from the query layer (model-checked) and the CLI, which must agree."""
    answer = query.diff_inputs(load_pipeline(cwd=root), "build")
    data = answer.model_dump(mode="json", by_alias=True)
    result = run_cli(["explain", "build", "--diff-inputs", "--format", "json"], root)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == data
    return data


def test_an_intact_baseline_still_gives_a_diff(passed: Path) -> None:
    (passed / "src" / "a.txt").write_text("changed\n")
    diff = _diff(passed)
    assert diff["baselineMissing"] is False and diff["reason"] is None
    assert [c["path"] for c in diff["changed"]] == ["src/a.txt"]


@pytest.mark.parametrize(
    "key",
    [
        "../../../../victim",  # from .async/cache/tasks up to tmp_path: victim.entry
        "deadbeef",  # an in-repo entry that is not one
        "a\x00b",
        "f" * 5000,
        "F" * 64,
        5,
        None,
    ],
    ids=lambda key: repr(key)[:20],
)
def test_a_baseline_key_that_is_not_a_cache_key_is_refused_and_nothing_is_deleted(
    tmp_path: Path, passed: Path, key: object
) -> None:
    victim = tmp_path / "victim.entry"
    victim.write_text("the user's own file\n")
    (passed / ".async" / "cache" / "tasks" / "deadbeef.entry").write_text("garbage")
    _pointer(passed).write_text(json.dumps({"key": key, "ref": "file:local"}))
    before = _files(tmp_path)
    diff = _diff(passed)
    assert (diff["baselineMissing"], diff["baseline"]) == (True, None)
    assert diff["reason"]
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "fields",
    [{"ref": 5}, {"ref": "x" * 5000}, {"updatedAt": "yesterday"}, {"updatedAt": True}],
    ids=lambda fields: repr(fields)[:20],
)
def test_a_baseline_pointer_with_a_malformed_field_is_reported_missing(
    passed: Path, fields: dict[str, Any]
) -> None:
    pointer = json.loads(_pointer(passed).read_text())
    _pointer(passed).write_text(json.dumps({**pointer, **fields}))
    diff = _diff(passed)
    assert (diff["baselineMissing"], diff["baseline"]) == (True, None)


def test_a_damaged_baseline_entry_is_reported_and_left_in_place(
    tmp_path: Path, passed: Path
) -> None:
    entry = _entry(passed)
    entry.write_bytes(entry.read_bytes()[:-1] + b"!")
    before = _files(tmp_path)
    diff = _diff(passed)
    assert diff["baselineMissing"] is True and diff["reason"]
    assert diff["baseline"] is not None
    assert _files(tmp_path) == before


def test_a_baseline_entry_linked_out_of_its_store_is_not_read(tmp_path: Path, passed: Path) -> None:
    entry = _entry(passed)
    outside = tmp_path / "outside" / entry.name
    outside.parent.mkdir()
    shutil.move(entry, outside)  # a whole, valid entry, but outside the store
    entry.symlink_to(outside)
    before = _files(tmp_path)
    diff = _diff(passed)
    assert diff["baselineMissing"] is True
    assert _files(tmp_path) == before


def test_a_baseline_pointer_linked_out_of_the_repository_is_not_followed(
    tmp_path: Path, passed: Path
) -> None:
    outside = tmp_path / "pointer.json"
    shutil.move(_pointer(passed), outside)
    _pointer(passed).symlink_to(outside)
    diff = _diff(passed)
    assert (diff["baselineMissing"], diff["baseline"]) == (True, None)
