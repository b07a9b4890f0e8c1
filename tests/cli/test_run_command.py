"""`run`, `run-task` and `gc` as a user drives them: output, exit codes, signals, terminals."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from async_pipeline.runner.lock import RunLock, lock_holder
from async_pipeline.runner.records import RUNS_DIR, run_ids
from tests.conftest import run_cli
from tests.runner._procs import live_processes_with, marker_seconds

PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="demo",
    tasks={{
        "a": task(sh("echo from-a")),
        "b": task(sh("echo from-b; {b_extra}"), depends_on=["a"]),
        "slow": task(sh("sleep {seconds} & sleep {seconds}"), depends_on=["a"]),
        "noisy": task(sh("yes noisy-line-of-output")),
    }},
    jobs={{"ok": job(target="b"), "slow": job(target="slow"), "noisy": job(target="noisy")}},
)
"""


def _project(tmp_path: Path, *, b_extra: str = "true", seconds: str = "5") -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE.format(b_extra=b_extra, seconds=seconds))
    return tmp_path


def _spawn(args: list[str], cwd: Path, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "async_pipeline", *args], cwd=cwd, **kw)  # type: ignore[call-overload,no-any-return]


def test_run_prints_task_lines_and_a_summary_and_exits_0(tmp_path: Path) -> None:
    result = run_cli(["run", "ok"], _project(tmp_path))
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[a] started" in lines
    assert any(line.startswith("[b] passed in") for line in lines)
    assert "ok: PASSED (2 passed)" in lines
    assert "from-a" not in result.stdout


def test_echo_prefixes_task_output(tmp_path: Path) -> None:
    result = run_cli(["run", "ok", "--echo"], _project(tmp_path))
    assert "[a] from-a" in result.stdout.splitlines()


def test_a_failed_run_exits_1_and_shows_the_failed_tasks_log_tail(tmp_path: Path) -> None:
    result = run_cli(["run", "ok"], _project(tmp_path, b_extra="echo broken-thing >&2; exit 4"))
    assert result.code == 1
    assert "ok: FAILED" in result.stdout
    assert "    broken-thing" in result.stdout.splitlines()
    assert "command exited with 4" in result.stdout


def test_format_json_prints_only_the_record(tmp_path: Path) -> None:
    result = run_cli(["run", "ok", "--format", "json"], _project(tmp_path))
    assert result.code == 0
    record = json.loads(result.stdout)
    assert record["jobId"] == "ok" and record["status"] == "passed"
    assert [t["id"] for t in record["tasks"]] == ["a", "b"]


def test_run_task_runs_a_task_with_its_dependencies(tmp_path: Path) -> None:
    result = run_cli(["run-task", "b", "--format", "json"], _project(tmp_path))
    record = json.loads(result.stdout)
    assert record["jobId"] == "task:b"
    assert [t["id"] for t in record["tasks"]] == ["a", "b"]


def test_the_record_path_printed_is_one_that_opens_from_where_the_command_ran(
    tmp_path: Path,
) -> None:
    # The project is elsewhere (--config): its record lives there, and the path says so,
    # for a run that executes tasks and for the next one, which a job stamp proves.
    (tmp_path / "project").mkdir()
    project = _project(tmp_path / "project")
    (tmp_path / "elsewhere").mkdir()
    for cwd, config in ((tmp_path, "project/pipeline.py"), (tmp_path / "elsewhere", None)):
        for _ in range(2):
            args = ["run", "ok", "--config", config or str(project / "pipeline.py")]
            result = run_cli(args, cwd)
            assert result.code == 0, result.stderr
            shown = result.stdout.splitlines()[-1].removeprefix("record: ")
            assert (cwd / shown).is_file(), shown
            assert Path(shown).is_absolute() == (config is None)


def test_a_held_lock_makes_run_fail_fast(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with RunLock(project, "other"):
        result = run_cli(["run", "ok"], project)
    assert result.code == 1
    assert "ASYNC_PIPELINE_RUN_ACTIVE" in result.stderr


def test_bad_run_flags_are_usage_errors(tmp_path: Path) -> None:
    for args in (
        ["run"],
        ["run", "ok", "--concurrency", "0"],
        ["run", "ok", "--concurrency", "x"],
        ["run", "ok", "--concurrency", "99999999999999999999"],
    ):
        result = run_cli(args, _project(tmp_path))
        assert result.code == 1
        assert "ASYNC_PIPELINE_USAGE" in result.stderr


def _wait_for_marker(seconds: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not live_processes_with(seconds):
        assert time.monotonic() < deadline, "task never started"
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_signals_end_tasks_finalize_the_record_and_release_the_lock(
    tmp_path: Path, sig: signal.Signals, code: int, name: str
) -> None:
    seconds = marker_seconds()
    project = _project(tmp_path, seconds=seconds)
    proc = _spawn(["run", "slow"], project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_marker(seconds)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert b"Traceback" not in stderr
    assert live_processes_with(seconds) == []
    assert lock_holder(project) is None
    record = json.loads((project / RUNS_DIR / run_ids(project)[-1] / "execution.json").read_text())
    assert record["status"] == "failed"
    assert record["interrupted"] == name
    assert record["finishedAt"] is not None
    statuses = {t["id"]: t["status"] for t in record["tasks"]}
    assert statuses == {"a": "passed", "slow": "cancelled"}


def test_an_interrupted_json_run_still_prints_its_finalized_record(tmp_path: Path) -> None:
    seconds = marker_seconds()
    project = _project(tmp_path, seconds=seconds)
    proc = _spawn(
        ["run", "slow", "--format", "json"],
        project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for_marker(seconds)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    printed = json.loads(stdout)
    stored = json.loads((project / RUNS_DIR / run_ids(project)[-1] / "execution.json").read_text())
    assert printed == stored
    assert printed["interrupted"] == "SIGINT" and printed["status"] == "failed"


def test_a_closed_output_pipe_ends_the_run_with_141(tmp_path: Path) -> None:
    project = _project(tmp_path)
    proc = _spawn(
        ["run", "noisy", "--echo"], project, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 141, stderr
    assert b"Traceback" not in stderr
    assert lock_holder(project) is None
    record = json.loads((project / RUNS_DIR / run_ids(project)[-1] / "execution.json").read_text())
    assert record["interrupted"] == "EPIPE"
    assert record["tasks"][0]["status"] == "cancelled"


def test_on_a_terminal_the_live_view_redraws_and_ends_with_a_summary(tmp_path: Path) -> None:
    project = _project(tmp_path)
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm"}
    proc = _spawn(["run", "ok"], project, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert proc.wait(timeout=30) == 0
    text = output.decode(errors="replace")
    assert "\x1b[" in text
    assert "done," in text
    assert "ok: PASSED (2 passed)" in text


def test_gc_keeps_the_newest_runs_and_prunes_old_cache_entries(tmp_path: Path) -> None:
    project = _project(tmp_path)
    for _ in range(3):
        assert run_cli(["run", "ok"], project).code == 0
    newest = run_ids(project)[-1]
    tasks = project / ".async" / "cache" / "tasks"
    (tasks / "blobs").mkdir(parents=True)
    old_entry, new_entry = tasks / "old.entry", tasks / "new.entry"
    orphan, temporary = tasks / "blobs" / ("0" * 64), tasks / ".tmp-half-written"
    for path in (old_entry, new_entry, orphan, temporary):
        path.write_bytes(b"x")
    ten_days_ago = time.time() - 10 * 86_400
    os.utime(old_entry, (ten_days_ago, ten_days_ago))
    baselines = project / ".async" / "cache" / "baselines"
    baselines.mkdir(parents=True)
    (baselines / "gone.json").write_text(json.dumps({"key": "old", "ref": "file:local"}))
    (baselines / "kept.json").write_text(json.dumps({"key": "new", "ref": "file:local"}))
    result = run_cli(["gc", "--keep", "1", "--cache-days", "7", "--format", "json"], project)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["removedRuns"]) == 2
    assert report["removedCacheEntries"] == ["old"]
    assert report["removedBaselines"] == ["gone"]
    assert run_ids(project) == [newest]
    assert new_entry.exists() and not old_entry.exists()
    assert not orphan.exists() and not temporary.exists()
    assert (baselines / "kept.json").exists()


def test_cache_clear_removes_entries_and_baselines(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "pipeline.py").write_text(
        (project / "pipeline.py")
        .read_text()
        .replace('sh("echo from-a")', 'sh("echo from-a"), cache=True')
    )
    assert run_cli(["run", "ok"], project).code == 0
    assert (project / ".async" / "cache" / "baselines" / "a.json").exists()
    result = run_cli(["cache", "clear"], project)
    assert result.code == 0, result.stderr
    assert not (project / ".async" / "cache").exists()
    record = json.loads(run_cli(["run", "ok", "--format", "json"], project).stdout)
    assert record["tasks"][0]["cacheHit"] is False


def test_what_a_function_step_prints_goes_to_its_log_not_to_the_json_record(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(
        "import sys\n"
        "from async_pipeline import define_pipeline, job, task\n"
        "def chatty(ctx):\n"
        "    print('hello from a step')\n"
        "    print('warning from a step', file=sys.stderr)\n"
        "async def chatty_async(ctx):\n"
        "    print('hello from an async step')\n"
        "pipeline = define_pipeline(name='p', tasks={'t': task(chatty, chatty_async)},"
        " jobs={'j': job(target='t')})\n"
    )
    result = run_cli(["run", "j", "--format", "json"], tmp_path)
    assert result.code == 0, result.stderr
    record = json.loads(result.stdout)
    logs = tmp_path / RUNS_DIR / record["id"] / "logs"
    assert (logs / "t.stdout.log").read_text() == "hello from a step\nhello from an async step\n"
    assert (logs / "t.stderr.log").read_text() == "warning from a step\n"
    assert "from a step" not in result.stderr


def test_task_lines_say_how_many_attempts_a_retried_task_took(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(
        "from async_pipeline import define_pipeline, job, sh, task\n"
        "pipeline = define_pipeline(name='p', tasks={\n"
        "    'flaky': task(sh('test -e once || { touch once; exit 3; }'), retry=2),\n"
        "    'broken': task(sh('exit 3'), retry=2),\n"
        "}, jobs={'flaky': job(target='flaky'), 'broken': job(target='broken')})\n"
    )
    passed = run_cli(["run", "flaky"], tmp_path)
    assert passed.code == 0, passed.stderr
    assert any("passed in" in ln and "after 2 attempts" in ln for ln in passed.stdout.splitlines())
    failed = run_cli(["run", "broken"], tmp_path)
    assert failed.code == 1
    assert any(
        line.startswith("[broken] FAILED (exit 3) in") and "after 2 attempts" in line
        for line in failed.stdout.splitlines()
    ), failed.stdout


def test_a_bad_setting_fails_even_a_run_the_job_stamp_would_prove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from async_pipeline.cli import main
    from async_pipeline.runner import stamp
    from async_pipeline.runner.cache import inputs

    monkeypatch.setattr(inputs, "RACY_NS", 0)  # vouch for files written a moment ago

    (tmp_path / "pipeline.py").write_text(
        "from async_pipeline import define_pipeline, job, sh, task\n"
        "pipeline = define_pipeline(name='p', tasks={\n"
        "    'a': task(sh('echo a > a.txt'), inputs=['pipeline.py'], outputs=['a.txt'],"
        " cache=True),\n"
        "}, jobs={'a': job(target='a')})\n"
    )
    for _ in range(2):
        assert run_cli(["run", "a"], tmp_path).code == 0
    # The runs above saw the process env (CI among what a stamp checks): so does the proof.
    proof = stamp.check_stamp(tmp_path, "a", tmp_path / "pipeline.py", dict(os.environ))
    assert proof is not None and proof.complete  # the next run would not load pipeline.py
    before = run_ids(tmp_path)
    err = io.StringIO()
    env = {**os.environ, "ASYNC_PIPELINE_KEEP_RUNS": "-1"}
    code = main(["run", "a"], cwd=tmp_path, stdout=io.StringIO(), stderr=err, env=env)
    assert code == 1
    assert "error[ASYNC_PIPELINE_USAGE]: ASYNC_PIPELINE_KEEP_RUNS" in err.getvalue()
    assert run_ids(tmp_path) == before


def test_a_step_thread_that_outlives_its_timeout_does_not_keep_the_command_alive(
    tmp_path: Path,
) -> None:
    (tmp_path / "pipeline.py").write_text(
        "import time\n"
        "from async_pipeline import define_pipeline, job, task\n"
        "def forever(ctx):\n"
        "    time.sleep(100000)\n"
        "pipeline = define_pipeline(name='p', tasks={'t': task(forever, timeout='500ms')},"
        " jobs={'j': job(target='t')})\n"
    )
    proc = _spawn(
        ["run", "j", "--format", "json"], tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = proc.communicate(timeout=30)  # it used to wait for the thread forever
    assert proc.returncode == 1, stderr
    record = json.loads(stdout)
    assert record["status"] == "failed" and record["tasks"][0]["exitCode"] == 124
    assert b"still running after its timeout" in stderr


def test_the_live_view_fits_each_status_line_to_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import re

    from async_pipeline.cli import Output
    from async_pipeline.cli._progress import Live

    monkeypatch.setenv("COLUMNS", "20")
    screen = io.StringIO()
    live = Live(Output(screen, io.StringIO()), False, lambda reason="": None)
    live.total = 3
    live.task_started("a" * 170)
    live.task_started("short")
    frames = re.split(r"\x1b\[\d+F\x1b\[J", screen.getvalue())
    for line in frames[-1].splitlines():
        assert len(line) <= 19, line
    assert frames[-1].splitlines()[0] == "0/3 done, 2 running"
