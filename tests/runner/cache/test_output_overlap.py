"""A cache hit never undoes a change made since the task last left its outputs.

Outputs are left out of a task's inputs, so for a task that rewrites its inputs in place
(``sed -i`` over ``src/**``) no edit of those files changes its key, and a hit would put
the stored copy back over the user's edit. A restore therefore overwrites a file only if
it is still what the task last left (its baseline entry's outputs); otherwise the task
runs. A task whose outputs match the pipeline file is not cached at all.

Runs go through the CLI in-process, the only writer of job stamps, with the stamp's racy
margin at 0 so a stamp could vouch for files written a moment ago if the runner let it.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import define_pipeline, job, sh, task
from async_pipeline.cli import main
from async_pipeline.core.paths import CACHE_DIR, CACHE_TASKS_DIR
from async_pipeline.runner import run_job
from async_pipeline.runner.cache import inputs
from async_pipeline.runner.cache.file_store import ENTRY_SUFFIX

BASE_ENV = {"PATH": os.environ["PATH"]}

PIPELINE = """\
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="p",
    tasks={{"t": task(sh({command!r}), inputs={inputs!r}, outputs={outputs!r}, cache=True)}},
    jobs={{"build": job(target="t")}},
)
"""


@dataclass(frozen=True)
class Run:
    task: dict[str, Any]
    warnings: list[str]


@pytest.fixture(autouse=True)
def _no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "RACY_NS", 0)


def _project(tmp_path: Path, command: str, inputs: list[str], outputs: list[str]) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("one  two\n")
    (root / "src" / "b.txt").write_text("three   four\n")
    (root / "in.txt").write_text("input\n")
    (root / "pipeline.py").write_text(
        PIPELINE.format(command=command, inputs=inputs, outputs=outputs)
    )
    return root


def _run(root: Path) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["run", "build", "--format", "json"], cwd=str(root), env=BASE_ENV, stdout=out, stderr=err
    )
    assert code == 0, err.getvalue()
    record = json.loads(out.getvalue())
    return Run(record["tasks"][0], record["warnings"])


def _entries(root: Path) -> list[Path]:
    return sorted((root / CACHE_TASKS_DIR).glob(f"*{ENTRY_SUFFIX}"))


def _stamps(root: Path) -> list[Path]:
    jobs = root / CACHE_DIR / "jobs"
    return sorted(jobs.iterdir()) if jobs.is_dir() else []


def _not_cached_warning(run: Run, names: str) -> None:
    """Exactly one warning, naming the task and ``names`` and saying how to fix it."""
    assert len(run.warnings) == 1, run.warnings
    warning = run.warnings[0]
    assert warning.startswith("cache: t is not cached: ")
    assert names in warning
    assert "declare outputs that do not" in warning and "cache=False" in warning


def test_an_in_place_edit_of_its_inputs_is_never_undone_by_a_hit(tmp_path: Path) -> None:
    root = _project(tmp_path, "sed -i 's/  */ /g' src/*.txt", ["src/**"], ["src/**"])
    first = _run(root)
    assert first.task["cacheHit"] is False and first.warnings == []
    assert (root / "src" / "a.txt").read_text() == "one two\n"
    unchanged = _run(root)  # nothing changed since: the stored result stands
    assert unchanged.task["cacheHit"] is True
    for edit in ("edited  by   the user\n", "edited again  here\n"):
        (root / "src" / "a.txt").write_text(edit)
        run = _run(root)
        assert run.task["cacheHit"] is False and run.task["attempts"] == 1
        assert (root / "src" / "a.txt").read_text() == " ".join(edit.split()) + "\n"
        assert (root / "src" / "b.txt").read_text() == "three four\n"
        assert _run(root).task["cacheHit"] is True
        assert (root / "src" / "a.txt").read_text() == " ".join(edit.split()) + "\n"


def test_an_output_changed_since_the_task_left_it_makes_the_task_run(tmp_path: Path) -> None:
    root = _project(tmp_path, "mkdir -p out && cat in.txt > out/o.txt", ["in.txt"], ["out/**"])
    assert _run(root).task["cacheHit"] is False
    (root / "out" / "o.txt").write_text("changed by hand\n")
    run = _run(root)
    assert run.task["cacheHit"] is False and run.task["attempts"] == 1
    assert (root / "out" / "o.txt").read_text() == "input\n"


def test_a_product_the_task_left_is_replaced_by_a_hit(tmp_path: Path) -> None:
    # As after switching branches back: the output there is the task's own latest product.
    root = _project(tmp_path, "mkdir -p out && cat in.txt > out/o.txt", ["in.txt"], ["out/**"])
    assert _run(root).task["cacheHit"] is False
    (root / "in.txt").write_text("other branch\n")
    assert _run(root).task["cacheHit"] is False
    (root / "in.txt").write_text("input\n")
    back = _run(root)
    assert back.task["cacheHit"] is True
    assert (root / "out" / "o.txt").read_text() == "input\n"
    (root / "out" / "o.txt").unlink()
    assert _run(root).task["cacheHit"] is True  # a missing output is always restored
    assert (root / "out" / "o.txt").read_text() == "input\n"


def test_outputs_matching_everything_never_restore_an_old_pipeline_py(tmp_path: Path) -> None:
    root = _project(tmp_path, "cp in.txt out.txt", ["in.txt"], ["**"])
    first = _run(root)
    assert first.task["cacheHit"] is False
    _not_cached_warning(first, "its outputs match the pipeline file pipeline.py")
    edited = (root / "pipeline.py").read_text() + "# edited by the user\n"
    (root / "pipeline.py").write_text(edited)
    for _ in range(2):
        run = _run(root)
        assert run.task["cacheHit"] is False and run.task["attempts"] == 1
        assert (root / "pipeline.py").read_text() == edited
    assert _entries(root) == []


def test_outputs_matching_the_pipeline_file_are_not_cached(tmp_path: Path) -> None:
    root = _project(tmp_path, "cp in.txt copy.py", ["in.txt"], ["*.py"])
    for _ in range(3):
        run = _run(root)
        assert run.task["cacheHit"] is False and run.task["attempts"] == 1
        _not_cached_warning(run, "its outputs match the pipeline file pipeline.py")
    assert _entries(root) == [] and _stamps(root) == []


def test_outputs_inside_the_inputs_are_left_out_of_the_key_and_cached(tmp_path: Path) -> None:
    # The usual monorepo shape: inputs pkg/**, outputs pkg/dist/** (here src/** and a file).
    root = _project(tmp_path, "cat src/a.txt > src/gen.txt", ["src/**"], ["src/gen.txt"])
    first = _run(root)
    assert first.warnings == [] and first.task["cacheHit"] is False
    second = _run(root)
    assert second.warnings == [] and second.task["cacheHit"] is True
    assert len(_entries(root)) == 1 and len(_stamps(root)) == 1


def test_a_pipeline_built_in_python_protects_the_projects_pipeline_py(tmp_path: Path) -> None:
    root = _project(tmp_path, "cp in.txt copy.py", ["in.txt"], ["*.py"])
    pipeline = define_pipeline(
        name="p",
        tasks={"t": task(sh("cp in.txt copy.py"), inputs=["in.txt"], outputs=["*.py"], cache=True)},
        jobs={"build": job(target="t")},
    )
    for _ in range(2):
        record = run_job(pipeline, id="build", cwd=root, env=BASE_ENV)
        assert record.status == "passed" and record.tasks[0].cache_hit is False
        assert len(record.warnings) == 1 and "pipeline file pipeline.py" in record.warnings[0]
    assert _entries(root) == []


def test_a_file_the_outputs_exclude_stays_in_the_key(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        "cat src/a.txt src/b.txt > src/gen.txt",
        ["src/**"],
        ["src/*.txt", "!src/b.txt", "!src/a.txt"],
    )
    assert _run(root).task["cacheHit"] is False
    assert _run(root).task["cacheHit"] is True
    (root / "src" / "b.txt").write_text("b changed\n")  # not an output: an input
    changed = _run(root)
    assert changed.task["cacheHit"] is False
    assert (root / "src" / "gen.txt").read_text() == "one  two\nb changed\n"
