"""The run lock: one run at a time, dead holders reclaimed atomically, never deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from async_pipeline import define_pipeline, job, sh, task
from async_pipeline.errors import PipelineError
from async_pipeline.runner import run_job
from async_pipeline.runner.lock import LOCK_FILE, RunLock, lock_holder, process_start_time


def test_a_second_holder_fails_fast_with_run_active(tmp_path: Path) -> None:
    with RunLock(tmp_path, "first"):
        with pytest.raises(PipelineError) as caught:
            RunLock(tmp_path, "second").acquire()
        assert caught.value.code == "ASYNC_PIPELINE_RUN_ACTIVE"
        assert str(os.getpid()) in caught.value.message
        holder = lock_holder(tmp_path)
        assert holder is not None
        assert holder["runId"] == "first"
        assert holder["startTime"] == process_start_time(os.getpid())
    assert lock_holder(tmp_path) is None


def test_a_run_fails_fast_while_another_holds_the_lock(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p", tasks={"a": task(sh("true"))}, jobs={"all": job(target="a")}
    )
    with RunLock(tmp_path, "holder"):
        with pytest.raises(PipelineError) as caught:
            run_job(pipeline, id="all", cwd=tmp_path, env={"PATH": os.defpath})
    assert caught.value.code == "ASYNC_PIPELINE_RUN_ACTIVE"
    assert run_job(pipeline, id="all", cwd=tmp_path, env={"PATH": os.defpath}).status == "passed"


def test_a_lock_left_by_a_dead_process_is_reclaimed(tmp_path: Path) -> None:
    path = tmp_path / LOCK_FILE
    path.parent.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path.write_text(json.dumps({"pid": int(dead.stdout), "startTime": 1, "runId": "crashed"}))
    with RunLock(tmp_path, "next") as lock:
        assert lock.held
        assert json.loads(path.read_text())["runId"] == "next"


def test_a_lock_naming_a_live_but_unrelated_pid_is_reclaimed(tmp_path: Path) -> None:
    path = tmp_path / LOCK_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": os.getppid(), "startTime": 1, "runId": "reused-pid"}))
    with RunLock(tmp_path, "next") as lock:
        assert lock.held


def test_releasing_never_deletes_the_lock_and_only_the_holder_clears_it(tmp_path: Path) -> None:
    holder = RunLock(tmp_path, "holder")
    holder.acquire()
    bystander = RunLock(tmp_path, "bystander")
    bystander.release()  # never acquired: must not touch the holder's record
    assert lock_holder(tmp_path) == {
        "pid": os.getpid(),
        "startTime": process_start_time(os.getpid()),
        "runId": "holder",
    }
    holder.release()
    holder.release()
    assert (tmp_path / LOCK_FILE).exists()
    assert lock_holder(tmp_path) is None


STRESS = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from async_pipeline.errors import PipelineError
    from async_pipeline.runner.lock import LOCK_FILE, RunLock

    root = Path(sys.argv[1]); rounds = int(sys.argv[2]); contenders = int(sys.argv[3])
    (root / LOCK_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / LOCK_FILE).write_text(json.dumps({"pid": 999999, "startTime": 1, "runId": "stale"}))
    for round_ in range(rounds):
        go_r, go_w = os.pipe(); done_r, done_w = os.pipe(); res_r, res_w = os.pipe()
        children = []
        for i in range(contenders):
            pid = os.fork()
            if pid == 0:
                os.close(go_w); os.close(done_w); os.close(res_r)
                os.read(go_r, 1)
                try:
                    RunLock(root, f"r{round_}c{i}").acquire()
                except PipelineError:
                    os.write(res_w, b"L"); os._exit(0)
                os.write(res_w, b"W")
                os.read(done_r, 1)
                os._exit(0)  # dies holding the lock: the next round starts on a stale lock
            children.append(pid)
        os.close(go_r); os.close(done_r); os.close(res_w)
        os.write(go_w, b"x" * contenders)
        results = b""
        while len(results) < contenders:
            results += os.read(res_r, contenders)
        os.write(done_w, b"x" * contenders)
        for pid in children:
            os.waitpid(pid, 0)
        for fd in (go_w, done_w, res_r):
            os.close(fd)
        if results.count(b"W") != 1:
            print(f"round {round_}: {results.count(b'W')} winners"); sys.exit(1)
    print("ok")
    """
)


def test_sixteen_contenders_on_a_stale_lock_have_exactly_one_winner_200_times(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", STRESS, str(tmp_path), "200", "16"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok"
