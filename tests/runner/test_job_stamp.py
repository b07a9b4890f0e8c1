"""Job stamps: a warm run that stats alone prove up to date, recorded without loading pipeline.py.

The CLI is the only writer of stamps, so every test drives ``async_pipeline.cli.main``
in-process. A file changed less than ``RACY_NS`` (2 s) before it was hashed is not vouched
for: the ``project`` fixture sets that margin to 0 so a stamp covers files written a moment
ago; one test keeps the real value.
"""

from __future__ import annotations

import io
import json
import marshal
import os
import random
import re
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # the dev environment has no stubs
import pytest

from async_pipeline.cli import main
from async_pipeline.core.paths import CACHE_TASKS_DIR, RUNS_DIR, run_ids
from async_pipeline.runner import stamp
from async_pipeline.runner.cache import inputs
from async_pipeline.runner.cache.engine import CacheEngine, Prepared
from async_pipeline.runner.lock import RunLock
from async_pipeline.testing import new_canary, scan_for_canary
from tests.conftest import SCHEMAS

BASE_ENV = {"PATH": os.environ["PATH"]}
ALL = {"a", "b", "c"}
REAL_RACY_NS = inputs.RACY_NS
RECORD_SCHEMA = json.loads((SCHEMAS / "execution-record.schema.json").read_text())

C_TASK = 'task(sh({command!r}), inputs=["src/c/**"], outputs=["out/c.txt"], cache=True)'
C_COMMAND = "mkdir -p out && cat src/c/*.txt > out/c.txt"
TASKS = {
    "a": 'task(sh("mkdir -p out && cat src/a/*.txt > out/a.txt"), inputs=["src/a/**"], '
    'outputs=["out/a.txt"], cache=True)',
    "b": 'task(sh("cat out/a.txt src/b/*.txt > out/b.txt"), depends_on=["a"], '
    'inputs=["src/b/**", "out/a.txt"], outputs=["out/b.txt"], cache=True)',
    "c": C_TASK.format(command=C_COMMAND),
}

SOURCE = """\
from pathlib import Path

from async_pipeline import agent, define_cache, define_pipeline, env, file_cache, job, sh, task

# Appended on every import: the tests tell from it whether a run loaded this file.
with open(Path(__file__).with_name("imports.log"), "a") as log:
    log.write("imported\\n")

{header}

pipeline = define_pipeline(
    name="stamps",
    {options}
    tasks={{
{tasks}
    }},
    jobs={{"build": job(target={targets!r})}},
)
"""


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    loaded: bool  # whether this run imported pipeline.py

    @property
    def record(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stdout)
        return data

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return {t["id"]: t for t in self.record["tasks"]}

    @property
    def keys(self) -> dict[str, str]:
        return {task_id: t["cacheKey"] for task_id, t in self.tasks.items()}

    @property
    def reran(self) -> set[str]:
        return {task_id for task_id, t in self.tasks.items() if not t["cacheHit"]}

    @property
    def all_hits(self) -> bool:
        return all(t["cacheHit"] for t in self.record["tasks"])


class Project:
    """A project in a directory: a -> b, and c on its own, each cached in the file store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = dict(BASE_ENV)
        for part in ("a", "b", "c"):
            (root / "src" / part).mkdir(parents=True)
            (root / "src" / part / "1.txt").write_text(f"{part} one\n")
        self.write()

    def write(
        self,
        *,
        tasks: dict[str, str] | None = None,
        header: str = "",
        options: str = "",
    ) -> None:
        """(Re)write pipeline.py; extra tasks are targets of the job besides b and c."""
        declared = {**TASKS, **(tasks or {})}
        body = "\n".join(f"        {name!r}: {source}," for name, source in declared.items())
        targets = ["b", *(name for name in declared if name not in ("a", "b"))]
        text = SOURCE.format(header=header, options=options, tasks=body, targets=targets)
        (self.root / "pipeline.py").write_text(text)

    def imports(self) -> int:
        log = self.root / "imports.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def run(self, *extra: str, env: dict[str, str] | None = None, fmt: str = "json") -> Run:
        before = self.imports()
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["run", "build", "--format", fmt, *extra],
            cwd=str(self.root),
            env=self.env if env is None else env,
            stdout=out,
            stderr=err,
        )
        return Run(code, out.getvalue(), err.getvalue(), self.imports() != before)

    def proven(self, env: dict[str, str] | None = None) -> set[str]:
        """The tasks the job's stamp proves up to date now (none without a usable stamp)."""
        config = (self.root / "pipeline.py").resolve()
        check = stamp.check_stamp(self.root, "build", config, self.env if env is None else env)
        return set() if check is None else set(check.tasks)

    def expected_outputs(self) -> dict[str, str]:
        def joined(part: str) -> str:
            return "".join(p.read_text() for p in sorted((self.root / "src" / part).glob("*")))

        a = joined("a")
        return {"out/a.txt": a, "out/b.txt": a + joined("b"), "out/c.txt": joined("c")}

    def outputs(self) -> dict[str, str]:
        return {name: (self.root / name).read_text() for name in self.expected_outputs()}

    def warm(self) -> Run:
        """A cold run: every task runs, and the stamp it leaves proves them all."""
        cold = self.run()
        assert cold.code == 0, cold.stderr
        assert cold.reran == set(cold.tasks)
        assert self.proven() == set(cold.tasks)
        return cold

    def assert_proven_run(self, keys: dict[str, str] | None = None) -> Run:
        """The next run is proven by the stamp: all hits, and pipeline.py is not imported."""
        run = self.run()
        assert run.code == 0, run.stderr
        assert not run.loaded
        assert run.all_hits
        if keys is not None:
            assert run.keys == keys
        assert self.outputs() == self.expected_outputs()
        return run


def _no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "RACY_NS", 0)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    _no_racy_window(monkeypatch)
    return Project(tmp_path / "project")


@pytest.fixture
def prepared(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tasks whose cache key runs compute (a task the stamp proves gets none)."""
    seen: list[str] = []
    original = CacheEngine.prepare

    def spy(self: CacheEngine, task: Any, **kw: Any) -> Prepared:
        seen.append(task.id)
        return original(self, task, **kw)

    monkeypatch.setattr(CacheEngine, "prepare", spy)
    return seen


def _stable(record: dict[str, Any]) -> dict[str, Any]:
    """A record less what differs between any two runs: its id, times and durations."""
    top = {k: v for k, v in record.items() if k not in ("id", "startedAt", "finishedAt")}
    top["tasks"] = [
        {k: v for k, v in t.items() if k not in ("startedAt", "finishedAt", "durationMs")}
        for t in record["tasks"]
    ]
    return top


def _text_lines(text: str) -> list[str]:
    """Text output less what differs between runs (timings, run ids, progress counters)."""
    text = re.sub(r"\d+\.\d\ds", "N.NNs", text)
    text = re.sub(r" \(\d+/\d+\)$", "", text, flags=re.MULTILINE)
    text = re.sub(r"runs/[^/]+/", "runs/ID/", text)
    return sorted(text.splitlines())


# The proven run --------------------------------------------------------------------------


def test_a_proven_run_is_recorded_like_a_warm_run_without_importing_the_pipeline(
    project: Project,
) -> None:
    project.warm()
    stamp.remove_stamp(project.root, "build")  # so this warm run takes the usual path
    warm = project.run()
    assert warm.code == 0 and warm.loaded and warm.all_hits

    proven = project.assert_proven_run(warm.keys)
    record = proven.record
    jsonschema.validate(record, RECORD_SCHEMA)
    assert record["status"] == "passed"
    assert set(record) == set(warm.record)
    for mine, usual in zip(record["tasks"], warm.record["tasks"], strict=True):
        assert set(mine) == set(usual)
        assert mine["logs"] == {"stdout": None, "stderr": None}
    assert _stable(record) == _stable(warm.record)
    assert record["id"] != warm.record["id"]
    written = project.root / RUNS_DIR / record["id"] / "execution.json"
    assert json.loads(written.read_text()) == record


def test_a_proven_run_prints_task_lines_and_a_summary_like_a_warm_run(project: Project) -> None:
    project.warm()
    stamp.remove_stamp(project.root, "build")
    warm = project.run(fmt="text")
    assert warm.code == 0 and warm.loaded
    proven = project.run(fmt="text")
    assert proven.code == 0 and not proven.loaded
    assert proven.stderr == ""
    lines = proven.stdout.splitlines()
    for task_id in sorted(ALL):
        assert f"[{task_id}] started" in lines
        finished = rf"\[{task_id}\] passed in \d+\.\d\ds \(cached\) \(\d/3\)"
        assert any(re.fullmatch(finished, line) for line in lines), lines
    assert "build: PASSED (3 passed, 3 cached)" in lines
    assert _text_lines(proven.stdout) == _text_lines(warm.stdout)


PROBE = """
import io, json, sys
from async_pipeline.cli import main
out = io.StringIO()
code = main(sys.argv[1:], stdout=out, stderr=io.StringIO())
record = json.loads(out.getvalue())
print(json.dumps({"code": code, "record": record, "modules": sorted(sys.modules)}))
"""
NOT_NEEDED = ("anyio", "pydantic", "async_pipeline.runner.api", "async_pipeline.core.loader")


def test_a_proven_run_in_a_new_process_loads_neither_pipeline_py_nor_the_runner(
    project: Project,
) -> None:
    cold = project.warm()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "run", "build", "--format", "json"],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["code"] == 0, done.stderr
    assert [t["cacheKey"] for t in result["record"]["tasks"]] == list(cold.keys.values())
    assert all(t["cacheHit"] for t in result["record"]["tasks"])
    assert project.imports() == 1
    assert set(NOT_NEEDED).isdisjoint(result["modules"])


# What makes tasks run again --------------------------------------------------------------


def _edit_an_input_of_a_keeping_size_and_mtime(root: Path) -> None:
    path = root / "src" / "a" / "1.txt"
    before = path.stat()
    path.write_text("A ONE\n")  # the same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # only its ctime tells


def _add_a_file_under_src_c(root: Path) -> None:
    (root / "src" / "c" / "2.txt").write_text("c two\n")


def _delete_out_b(root: Path) -> None:
    (root / "out" / "b.txt").unlink()


def _overwrite_out_a(root: Path) -> None:
    (root / "out" / "a.txt").write_text("edited by hand\n")


def _overwrite_out_c(root: Path) -> None:
    (root / "out" / "c.txt").write_text("edited by hand\n")


@pytest.mark.parametrize(
    ("change", "still_proven", "reran"),
    [
        (_edit_an_input_of_a_keeping_size_and_mtime, {"c"}, {"a", "b"}),
        (_add_a_file_under_src_c, {"a", "b"}, {"c"}),
        (_delete_out_b, {"a", "c"}, set()),
        # An output changed by hand is not restored over: its task runs (and b, whose
        # input out/a.txt is then as before, is a hit).
        (_overwrite_out_a, {"c"}, {"a"}),
        (_overwrite_out_c, {"a", "b"}, {"c"}),
    ],
    ids=[
        "input-edited-only-ctime-moved",
        "new-input-file",
        "output-deleted",
        "output-edited",
        "output-edited-no-dependent",
    ],
)
def test_a_change_reruns_or_restores_exactly_the_affected_tasks_then_all_are_proven_again(
    project: Project,
    prepared: list[str],
    change: Callable[[Path], None],
    still_proven: set[str],
    reran: set[str],
) -> None:
    project.warm()
    change(project.root)
    assert project.proven() == still_proven
    del prepared[:]
    run = project.run()
    assert run.code == 0, run.stderr
    assert run.loaded
    assert run.reran == reran
    # What the stamp still proved was recorded as a hit without computing its key.
    assert sorted(prepared) == sorted(ALL - still_proven)
    assert project.outputs() == project.expected_outputs()
    if not reran and project.proven() != ALL:
        # A restored output was written by this run, after its digest was known: no stat
        # of it can be vouched for until it is hashed again, by the next run, as a hit.
        settling = project.run()
        assert settling.code == 0 and settling.all_hits
    assert project.proven() == ALL
    project.assert_proven_run(run.keys)


def test_a_changed_command_in_pipeline_py_reruns_that_task_only(project: Project) -> None:
    project.warm()
    project.write(tasks={"c": C_TASK.format(command="mkdir -p out && rev src/c/*.txt > out/c.txt")})
    assert project.proven() == set()
    run = project.run()
    assert run.code == 0, run.stderr
    assert run.loaded and run.reran == {"c"}
    assert (project.root / "out" / "c.txt").read_text() == "eno c\n"
    again = project.run()
    assert not again.loaded and again.all_hits and again.keys == run.keys


@pytest.mark.parametrize(
    ("same_size_and_mtime", "bytecode"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=[
        "grown",
        "same-size-and-mtime",
        "grown-with-bytecode",
        "same-size-and-mtime-with-bytecode",
    ],
)
def test_an_edited_helper_module_loads_the_pipeline_and_reruns_the_task_using_it(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    same_size_and_mtime: bool,
    bytecode: bool,
) -> None:
    # Bytecode as Python caches it by default (this suite may run with
    # PYTHONDONTWRITEBYTECODE set), kept out of the repository's own __pycache__ folders.
    monkeypatch.setattr(sys, "dont_write_bytecode", not bytecode)
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "pycache"))
    helper = project.root / "helpers.py"
    helper.write_text(f"C_CMD = {C_COMMAND!r}\n")
    project.write(
        header="from helpers import C_CMD",
        tasks={"c": TASKS["c"].replace(repr(C_COMMAND), "C_CMD")},
    )
    assert project.run().reran == ALL
    # Importing helpers listed the project directory, which the cold run then added to
    # (.async, out): only the stamp of the next run fingerprints the listing as it stays.
    warm = project.run()
    assert warm.loaded and warm.all_hits
    project.assert_proven_run(warm.keys)
    before = helper.stat()
    if same_size_and_mtime:
        helper.write_text(f"C_CMD = {C_COMMAND.replace('cat', 'rev')!r}\n")
        assert helper.stat().st_size == before.st_size
        os.utime(helper, ns=(before.st_atime_ns, before.st_mtime_ns))
        expected = "eno c\n"
    else:
        helper.write_text(f"C_CMD = {C_COMMAND.replace(' >', ' | tr a-z A-Z >')!r}\n")
        expected = "C ONE\n"
    run = project.run()
    assert run.code == 0, run.stderr
    assert (project.root / "out" / "c.txt").read_text() == expected
    assert run.loaded and run.reran == {"c"}
    again = project.run()
    assert not again.loaded and again.all_hits


def test_a_changed_env_value_reruns_the_task_declaring_it_and_no_other(project: Project) -> None:
    mode = (
        'task(sh("mkdir -p out && echo mode=$MODE > out/m.txt"), inputs=["src/c/**"], '
        'outputs=["out/m.txt"], cache=True, env={"MODE": env.var("MODE", default="x")})'
    )
    project.write(tasks={"m": mode})
    project.warm()
    other = {**project.env, "MODE": "y"}
    assert project.proven(other) == set()
    run = project.run(env=other)
    assert run.code == 0, run.stderr
    assert run.loaded and run.reran == {"m"}
    assert (project.root / "out" / "m.txt").read_text() == "mode=y\n"
    again = project.run(env=other)
    assert not again.loaded and again.all_hits and again.keys == run.keys


def _cache_clear(project: Project) -> None:
    out = io.StringIO()
    code = main(["cache", "clear"], cwd=str(project.root), env=project.env, stdout=out)
    assert code == 0, out.getvalue()


def _entries_deleted_by_hand(project: Project) -> None:
    for entry in (project.root / CACHE_TASKS_DIR).glob("*.entry"):
        entry.unlink()


@pytest.mark.parametrize(
    "clear", [_cache_clear, _entries_deleted_by_hand], ids=["cache-clear", "rm"]
)
def test_a_cleared_cache_reruns_every_task(
    project: Project, clear: Callable[[Project], None]
) -> None:
    cold = project.warm()
    clear(project)
    assert project.proven() == set()
    run = project.run()
    assert run.code == 0, run.stderr
    assert run.loaded and run.reran == ALL and run.keys == cold.keys
    project.assert_proven_run(run.keys)


def _random_bytes(_stamp: bytes) -> bytes:
    return random.Random(20240611).randbytes(300)


def _truncated(stamp_bytes: bytes) -> bytes:
    return stamp_bytes[: len(stamp_bytes) // 2]


def _empty(_stamp: bytes) -> bytes:
    return b""


def _another_object(_stamp: bytes) -> bytes:
    return marshal.dumps({"format": 1, "tasks": [1, 2, 3]})


@pytest.mark.parametrize(
    "corrupt",
    [_random_bytes, _truncated, _empty, _another_object],
    ids=["random-bytes", "truncated", "empty", "not-a-stamp"],
)
def test_a_corrupt_stamp_means_the_usual_run_and_a_fresh_stamp(
    project: Project, corrupt: Callable[[bytes], bytes]
) -> None:
    cold = project.warm()
    path = stamp.stamp_path(project.root, "build")
    path.write_bytes(corrupt(path.read_bytes()))
    run = project.run()
    assert run.code == 0, run.stderr
    assert run.stderr == ""
    assert run.loaded and run.all_hits and run.keys == cold.keys
    assert project.proven() == ALL
    project.assert_proven_run(cold.keys)


def test_a_corrupt_stamp_claiming_a_huge_tuple_costs_no_memory(project: Project) -> None:
    # Five bytes of marshal data announce a tuple of 2**24 items: reading them allocates
    # 8 bytes per announced item before finding the data gone. (A count near 2**31, as
    # random damage can produce, means some 17 GB.)
    project.warm()
    stamp.stamp_path(project.root, "build").write_bytes(b"(" + (2**24).to_bytes(4, "little"))
    tracemalloc.start()
    try:
        run = project.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.code == 0, run.stderr
    assert run.all_hits
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB while reading a 5-byte stamp"


def test_force_reruns_every_task_and_the_next_run_is_proven(project: Project) -> None:
    cold = project.warm()
    run = project.run("--force")
    assert run.code == 0, run.stderr
    assert run.loaded and run.reran == ALL and run.keys == cold.keys
    assert run.record["force"] is True
    project.assert_proven_run(cold.keys)


def test_an_entry_past_its_ttl_is_run_again_rather_than_proven(project: Project) -> None:
    project.write(options='cache=define_cache(stores={"file": file_cache(ttl_ms=1000)}),')
    project.warm()
    project.assert_proven_run()
    time.sleep(1.1)  # let the 1 s TTL of the entries pass
    assert project.proven() == set()
    run = project.run()
    assert run.code == 0, run.stderr
    assert run.loaded and run.reran == ALL
    assert project.outputs() == project.expected_outputs()


# Task output -----------------------------------------------------------------------------

SAY = 'task(sh("echo hello from say && echo careful >&2"), inputs=["src/c/**"], cache=True)'


def _logs(project: Project, record: dict[str, Any], task_id: str) -> dict[str, str]:
    """The content of each log of the task in the run ``record`` describes."""
    (refs,) = [t["logs"] for t in record["tasks"] if t["id"] == task_id]
    run_dir = project.root / RUNS_DIR / record["id"]
    return {stream: (run_dir / ref).read_text() for stream, ref in refs.items()}


def test_a_proven_task_replays_its_stored_logs(project: Project) -> None:
    project.write(tasks={"say": SAY})
    cold = project.warm()
    logs = _logs(project, cold.record, "say")
    assert logs == {"stdout": "hello from say\n", "stderr": "careful\n"}
    proven = project.assert_proven_run(cold.keys)
    assert proven.tasks["say"]["logs"] == cold.tasks["say"]["logs"]
    assert _logs(project, proven.record, "say") == logs
    echoed = project.run("--echo", fmt="text")
    assert echoed.code == 0 and not echoed.loaded
    lines = echoed.stdout.splitlines()
    assert "[say] hello from say" in lines and "[say] careful" in lines


def test_a_task_proven_inside_a_partial_run_replays_its_logs_too(
    project: Project, prepared: list[str]
) -> None:
    project.write(tasks={"say": SAY})
    cold = project.warm()
    (project.root / "src" / "a" / "1.txt").write_text("a one, edited\n")
    assert project.proven() == {"c", "say"}
    del prepared[:]
    run = project.run("--echo", fmt="text")
    assert run.code == 0 and run.loaded
    assert sorted(prepared) == ["a", "b"]
    lines = run.stdout.splitlines()
    assert "[say] hello from say" in lines and "[say] careful" in lines
    record = json.loads(
        (project.root / RUNS_DIR / run_ids(project.root)[-1] / "execution.json").read_text()
    )
    assert [t["cacheHit"] for t in record["tasks"] if t["id"] == "say"] == [True]
    assert _logs(project, record, "say") == _logs(project, cold.record, "say")


# The run lock ----------------------------------------------------------------------------


def test_a_proven_run_fails_fast_while_another_run_holds_the_lock(
    project: Project,
) -> None:
    project.warm()
    before = run_ids(project.root)
    with RunLock(project.root, "someone-else"):
        run = project.run()
    assert run.code == 1
    assert json.loads(run.stdout)["error"]["code"] == "ASYNC_PIPELINE_RUN_ACTIVE"
    assert "ASYNC_PIPELINE_RUN_ACTIVE" in run.stderr
    assert not run.loaded
    assert run_ids(project.root) == before
    project.assert_proven_run()


# Secrets ---------------------------------------------------------------------------------


def test_no_file_under_async_holds_a_secret_the_job_reads(project: Project) -> None:
    canary = new_canary("stamp")
    secret_task = (
        'task(sh("mkdir -p out && test -n \\"$TOKEN\\" && echo \\"token=$TOKEN\\" '
        '&& echo ok > out/s.txt"), inputs=["src/c/**"], outputs=["out/s.txt"], cache=True, '
        'env={"TOKEN": env.secret("TOKEN")})'
    )
    project.write(tasks={"s": secret_task})
    project.env["TOKEN"] = canary
    cold = project.warm()
    assert cold.tasks["s"]["logs"]["stdout"] is not None
    proven = project.assert_proven_run(cold.keys)
    echoed = project.run("--echo", fmt="text")
    assert stamp.stamp_path(project.root, "build").is_file()
    captured = {
        "cold": cold.stdout + cold.stderr,
        "proven": proven.stdout + proven.stderr,
        "echoed": echoed.stdout + echoed.stderr,
    }
    assert scan_for_canary(canary, trees=[project.root / ".async"], captured=captured) == []
    # The secret's value is part of what the stamp checks, without being stored in it.
    other = {**project.env, "TOKEN": new_canary("other")}
    assert project.proven(other) == set()
    assert project.run(env=other).reran == {"s"}


# Racy timestamps -------------------------------------------------------------------------


def test_with_the_real_racy_window_a_just_edited_input_is_not_proven_but_still_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prepared: list[str]
) -> None:
    _no_racy_window(monkeypatch)  # for a stamp that proves every task to start from
    project = Project(tmp_path / "project")
    project.warm()
    monkeypatch.setattr(inputs, "RACY_NS", REAL_RACY_NS)
    assert REAL_RACY_NS == 2_000_000_000
    (project.root / "src" / "a" / "1.txt").write_text("a one, edited\n")
    edited = project.run()
    assert edited.code == 0, edited.stderr
    assert edited.reran == {"a", "b"}
    # Hashed within 2 s of its change, the input could still change unseen: not vouched for.
    assert project.proven() == {"c"}
    del prepared[:]
    run = project.run()
    assert run.code == 0, run.stderr
    assert run.loaded and run.all_hits and run.keys == edited.keys
    assert sorted(prepared) == ["a", "b"]
    assert project.outputs() == project.expected_outputs()


# Function and agent steps ----------------------------------------------------------------

SHOUT = """
def shout(ctx):
    text = (ctx.cwd / "src" / "c" / "1.txt").read_text()
    (ctx.cwd / "out").mkdir(exist_ok=True)
    (ctx.cwd / "out" / "d.txt").write_text({expression})
    ctx.meta(chars=len(text))
"""
D_TASK = 'task(shout, inputs=["src/c/**"], outputs=["out/d.txt"], cache=True)'


def test_a_function_step_is_proven_only_while_its_source_is_unchanged(project: Project) -> None:
    project.write(header=SHOUT.format(expression="text.upper()"), tasks={"d": D_TASK})
    cold = project.warm()
    proven = project.assert_proven_run(cold.keys)
    assert proven.tasks["d"]["metadata"] == cold.tasks["d"]["metadata"] == {"chars": 6}
    project.write(header=SHOUT.format(expression="text[::-1]"), tasks={"d": D_TASK})
    run = project.run()
    assert run.code == 0, run.stderr
    assert run.loaded and run.reran == {"d"}
    assert (project.root / "out" / "d.txt").read_text() == "\neno c"
    project.assert_proven_run(run.keys)


@pytest.fixture
def fresh_shared_steps() -> Iterator[Callable[[], None]]:
    """Forget the module ``shared_steps``, as the next CLI process would not have it."""

    def forget() -> None:
        sys.modules.pop("shared_steps", None)

    forget()
    yield forget
    forget()


def test_a_function_step_from_a_module_outside_the_project_is_rerun_when_it_changes(
    project: Project, tmp_path: Path, fresh_shared_steps: Callable[[], None]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    module = shared / "shared_steps.py"
    module.write_text(SHOUT.format(expression="text.upper()"))
    header = f"import sys\nsys.path.insert(0, {str(shared)!r})\nfrom shared_steps import shout"
    project.write(header=header, tasks={"d": D_TASK})
    project.warm()
    fresh_shared_steps()
    module.write_text(SHOUT.format(expression="text[::-1] + '!'"))
    run = project.run()
    assert run.code == 0, run.stderr
    assert (project.root / "out" / "d.txt").read_text() == "\neno c!"
    assert run.reran == {"d"}


FLAVORED = (
    'task(sh("mkdir -p out && echo " + FLAVOR + " > out/f.txt"), inputs=["src/c/**"], '
    'outputs=["out/f.txt"], cache=True)'
)


def _set_flavor_variable(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    # The import reads the process's environment, whatever env the run itself is given.
    monkeypatch.setenv("STAMP_TEST_FLAVOR", "spicy")


def _create_flavor_file(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    (project.root / "spicy").touch()


@pytest.mark.parametrize(
    ("flavor", "change"),
    [
        ('os.environ.get("STAMP_TEST_FLAVOR", "plain")', _set_flavor_variable),
        ('"spicy" if (Path(__file__).parent / "spicy").exists() else "plain"', _create_flavor_file),
    ],
    ids=["environment-variable", "file-exists"],
)
def test_a_command_built_from_what_the_import_saw_is_rerun_when_that_changes(
    project: Project,
    monkeypatch: pytest.MonkeyPatch,
    flavor: str,
    change: Callable[[Project, pytest.MonkeyPatch], None],
) -> None:
    monkeypatch.delenv("STAMP_TEST_FLAVOR", raising=False)
    project.write(header=f"import os\nFLAVOR = {flavor}", tasks={"f": FLAVORED})
    project.warm()
    assert (project.root / "out" / "f.txt").read_text() == "plain\n"
    change(project, monkeypatch)
    run = project.run()
    assert run.code == 0, run.stderr
    assert (project.root / "out" / "f.txt").read_text() == "spicy\n"
    assert run.reran == {"f"}


MOCK_AGENT = """
import os, sys
sys.stdin.read()
with open(os.environ["CALLS_FILE"], "a") as calls:
    calls.write("called\\n")
print("# Proposal")
"""


def test_an_agent_step_is_never_proven(
    project: Project, tmp_path: Path, prepared: list[str]
) -> None:
    tool = tmp_path / "mock_agent.py"
    tool.write_text(MOCK_AGENT)
    calls = tmp_path / "calls.txt"
    project.env["CALLS_FILE"] = str(calls)
    agents = f'agents={{"mock": {{"command": [{sys.executable!r}, {str(tool)!r}], "model": "m"}}}},'
    propose = (
        'task(agent(use="mock", prompt="summarize", stdout_to="out/g.md"), '
        'inputs=["src/c/**"], outputs=["out/g.md"], cache=True)'
    )
    project.write(options=agents, tasks={"g": propose})
    cold = project.run()
    assert cold.code == 0, cold.stderr
    assert cold.reran == ALL | {"g"}
    assert calls.read_text() == "called\n"
    assert project.proven() == ALL
    del prepared[:]
    run = project.run()
    assert run.code == 0, run.stderr
    assert run.loaded and run.all_hits and run.keys == cold.keys
    assert prepared == ["g"]
    assert calls.read_text() == "called\n"
    assert project.proven() == ALL


# What the interpreter itself brings to an import -----------------------------------------


def test_an_import_that_reads_relative_paths_is_proven_only_from_the_same_directory(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(project.root)
    project.write(header='FLAVOR = Path("flavor.txt").read_text().strip()')
    (project.root / "flavor.txt").write_text("plain\n")
    project.warm()
    assert project.proven() == ALL
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "flavor.txt" would now name another file (or none)
    assert project.proven() == set()


def test_a_stamp_from_another_virtualenv_or_pythonpath_proves_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.warm()
    assert project.proven() == ALL
    with monkeypatch.context() as patched:
        patched.setattr(sys, "prefix", "/somewhere/else/venv")
        assert project.proven() == set()
    with monkeypatch.context() as patched:
        patched.setenv("PYTHONPATH", "/somewhere/else/lib")
        assert project.proven() == set()
    assert project.proven() == ALL


READER = (
    'task(sh("mkdir -p out && cat out/c.txt > out/d.txt"), inputs=["out/c.txt"], '
    'outputs=["out/d.txt"], cache=True)'
)


def test_a_task_is_never_proven_for_a_file_state_it_did_not_see(project: Project) -> None:
    # d reads c's output without depending on c. After an edit to c's input, c runs again
    # and rewrites out/c.txt while d, proven before that, is a hit for the old content:
    # the next stamp keeps both states of out/c.txt, and d is not proven for the new one.
    project.write(tasks={"d": READER})
    cold = project.run("--concurrency", "1")
    assert cold.code == 0, cold.stderr
    assert project.run("--concurrency", "1").all_hits
    assert project.proven() == {*ALL, "d"}
    # a's input changes too, so that most of the next stamp is new rather than carried.
    (project.root / "src" / "a" / "1.txt").write_text("a changed\n")
    (project.root / "src" / "c" / "1.txt").write_text("c changed\n")
    changed = project.run("--concurrency", "1")
    assert changed.code == 0, changed.stderr
    assert changed.reran == {"a", "b", "c"}
    assert "d" not in project.proven()
    again = project.run("--concurrency", "1")
    assert again.reran == {"d"}
    assert (project.root / "out" / "d.txt").read_text() == "c changed\n"


def test_a_stamp_does_not_grow_over_many_edit_and_run_rounds(project: Project) -> None:
    project.warm()
    path = project.root / "src" / "c" / "1.txt"
    sizes = []
    for round_ in range(12):
        path.write_text(f"c round {round_}\n")
        run = project.run()
        assert run.code == 0, run.stderr
        assert run.reran == {"c"}
        check = stamp.check_stamp(project.root, "build", project.root / "pipeline.py", project.env)
        assert check is not None
        sizes.append(len(check.data["files"]))
    # One file per input and output of a, b and c (six), plus at most a quarter more rows
    # left by states no note holds any longer.
    assert max(sizes) <= 6 * 1.25 + 1, sizes


def test_a_stamp_that_cannot_be_written_never_fails_the_run(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.warm()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated fault while writing the stamp")

    monkeypatch.setattr(stamp.StampBuilder, "write", broken)
    (project.root / "src" / "c" / "1.txt").write_text("c changed\n")
    run = project.run()
    assert run.code == 0 and run.stderr == ""
    assert run.record["status"] == "passed" and run.reran == {"c"}
    assert not stamp.stamp_path(project.root, "build").exists()  # the stale one is gone too


def test_every_row_a_note_gets_holds_exactly_the_path_and_state_it_was_added_with() -> None:
    # Rows are looked up by each path's newest row; a state only an older row (or none)
    # holds gets a row of its own. Whatever the order, a note never points at another state.
    rng = random.Random(7)
    paths = [f"src/{i}.txt" for i in range(6)]
    table = stamp._Table(stamp._FILE_SIG)
    for _ in range(3):  # then again from a seeded table, as a run reusing the last stamp
        for _ in range(400):
            wanted = {p: (rng.randrange(3), 1, 2, 3) for p in rng.sample(paths, 3)}
            packed = table.add_all(wanted)
            size = stamp._FILE_SIG.size
            for path, row in zip(wanted, stamp._indices(packed), strict=True):
                held = stamp._FILE_SIG.unpack(table.sigs[row * size : (row + 1) * size])
                assert (table.paths[row], held) == (path, wanted[path])
        table = stamp._Table(stamp._FILE_SIG, (table.paths, bytes(table.sigs)))
    # Three states of six paths, revisited 1,200 times: rows stay near their number.
    assert len(table.paths) <= 6 * 3 * 3
