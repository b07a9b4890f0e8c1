"""Every mistake a user can make on the command line gets a code, a hint and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from async_pipeline.errors import PipelineError
from tests.conftest import FIXTURES, run_cli, run_cli_process


def _code_of(stderr: str) -> str:
    first = stderr.splitlines()[0]
    return first.split("error[", 1)[1].split("]", 1)[0]


@pytest.mark.parametrize(
    "args",
    [
        ["lst"],
        ["list", "--formt", "json"],
        ["list", "--format", "yaml"],
        ["graph", "--format", "svg"],
        ["explain"],
        [],
        ["metadata", "--include-sources=yes"],
    ],
)
def test_a_wrong_flag_or_command_is_a_usage_error_with_exit_1(args: list[str]) -> None:
    result = run_cli(args, FIXTURES / "minimal")
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_USAGE"
    assert "Traceback" not in result.stderr


def test_a_mistyped_command_suggests_the_nearest_one() -> None:
    result = run_cli(["lst"], FIXTURES / "minimal")
    assert 'did you mean "list"' in result.stderr


def test_unknown_task_names_the_nearest_task() -> None:
    result = run_cli(["explain", "biuld"], FIXTURES / "full")
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_UNKNOWN_TASK"
    assert '"build"' in result.stderr


def test_unknown_job_filter_is_reported() -> None:
    result = run_cli(["graph", "--job", "verfy"], FIXTURES / "full")
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_UNKNOWN_JOB"


def test_errors_are_also_json_on_stdout_with_format_json() -> None:
    result = run_cli(["explain", "nope", "--format", "json"], FIXTURES / "full")
    assert result.code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "ASYNC_PIPELINE_UNKNOWN_TASK"
    assert error["path"] == "nope"


def test_a_missing_pipeline_file_says_where_it_looked(tmp_path: Path) -> None:
    result = run_cli(["list"], tmp_path)
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_CONFIG_NOT_FOUND"
    assert str(tmp_path) in result.stderr


def test_an_invalid_pipeline_points_at_the_users_line(write_pipeline) -> None:  # type: ignore[no-untyped-def]
    cwd = write_pipeline(
        "from async_pipeline import define_pipeline, task\n"
        "\n"
        "pipeline = define_pipeline(\n"
        "    name='x',\n"
        "    tasks={'build': task(timout='5m')},\n"
        ")\n"
    )
    result = run_cli_process(["list"], cwd)
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_UNKNOWN_FIELD"
    assert "tasks.build.timout" in result.stderr
    assert 'did you mean "timeout"' in result.stderr
    assert "at pipeline.py:3" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_exception_in_the_users_file_is_reported_without_a_traceback(write_pipeline) -> None:  # type: ignore[no-untyped-def]
    cwd = write_pipeline("import json\n\nvalue = json.loads('{')\n")
    result = run_cli_process(["metadata"], cwd)
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_CONFIG_ERROR"
    assert "pipeline.py:3" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_and_version_exit_0() -> None:
    help_result = run_cli_process(["--help"], FIXTURES / "minimal")
    assert help_result.code == 0
    assert "metadata" in help_result.stdout
    version = run_cli_process(["--version"], FIXTURES / "minimal")
    assert version.code == 0
    assert version.stdout.startswith("async-pipeline ")


def test_console_script_and_module_entry_points_agree() -> None:
    script = Path(sys.executable).with_name("async-pipeline")
    cwd = FIXTURES / "minimal"
    via_script = subprocess.run(
        [str(script), "list", "--format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    via_module = run_cli_process(["list", "--format", "json"], cwd)
    assert via_script.returncode == via_module.code == 0
    assert json.loads(via_script.stdout) == json.loads(via_module.stdout)


def test_a_closed_stdout_pipe_exits_141_quietly(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        from synthetic import write_pipeline as write_synthetic
    finally:
        sys.path.pop(0)
    write_synthetic(tmp_path, tasks=4000)  # output well past any pipe buffer
    proc = subprocess.Popen(
        [sys.executable, "-m", "async_pipeline", "metadata", "--format", "json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr


def test_an_internal_error_is_reported_with_a_code_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from async_pipeline.cli import _commands

    def explode(*_args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setitem(_commands._HANDLERS, "list", explode)
    monkeypatch.delenv("ASYNC_PIPELINE_DEBUG", raising=False)
    result = run_cli(["list"], FIXTURES / "minimal")
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_INTERNAL"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("raised", "code", "exit_code"),
    [
        (
            ExceptionGroup("task group", [PipelineError("ASYNC_PIPELINE_RUN_ACTIVE", "held")]),
            "ASYNC_PIPELINE_RUN_ACTIVE",
            1,
        ),
        (
            ExceptionGroup(
                "outer", [ExceptionGroup("inner", [PipelineError("ASYNC_PIPELINE_USAGE", "bad")])]
            ),
            "ASYNC_PIPELINE_USAGE",
            1,
        ),
        (BaseExceptionGroup("task group", [KeyboardInterrupt()]), None, 130),
        (
            ExceptionGroup("two", [RuntimeError("a"), PipelineError("ASYNC_PIPELINE_USAGE", "b")]),
            "ASYNC_PIPELINE_INTERNAL",
            1,
        ),
    ],
)
def test_an_error_a_task_group_wrapped_alone_is_reported_as_itself(
    monkeypatch: pytest.MonkeyPatch, raised: BaseException, code: str | None, exit_code: int
) -> None:
    from async_pipeline.cli import _commands

    def fail(*_args: object) -> int:
        raise raised

    monkeypatch.setitem(_commands._HANDLERS, "list", fail)
    monkeypatch.delenv("ASYNC_PIPELINE_DEBUG", raising=False)
    result = run_cli(["list"], FIXTURES / "minimal")
    assert result.code == exit_code
    assert (_code_of(result.stderr) if code else result.stderr) == (code or "")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["gc"],
        ["cache", "clear"],
        ["runs"],
        ["runs", "show", "20260101T000000000Z-abcdef"],
        ["explain", "--run", "20260101T000000000Z-abcdef"],
    ],
)
def test_commands_on_project_state_need_a_pipeline_file_and_create_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    result = run_cli(args, tmp_path)
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_CONFIG_NOT_FOUND"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["run", "verify", "extra"], "async-pipeline run --help"),
        (["list", "--bogus"], "async-pipeline list --help"),
        (["--bogus"], "async-pipeline --help"),
    ],
)
def test_an_argument_no_command_takes_points_at_that_commands_help(
    args: list[str], hint: str
) -> None:
    result = run_cli(args, FIXTURES / "minimal")
    assert result.code == 1
    assert _code_of(result.stderr) == "ASYNC_PIPELINE_USAGE"
    assert f"hint: see `{hint}`" in result.stderr


def test_a_working_directory_deleted_under_the_command_is_a_usage_error(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys\n"
        f"os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})\n"
        "from async_pipeline.cli import main\n"
        "sys.argv = ['async-pipeline', 'list']\n"
        "sys.exit(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 1
    assert _code_of(done.stderr) == "ASYNC_PIPELINE_USAGE"
    assert "no longer exists" in done.stderr and "Traceback" not in done.stderr
