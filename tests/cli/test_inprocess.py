"""run_pipeline_cli: the CLI in-process, its output captured, its arguments checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from async_pipeline import __version__, run_pipeline_cli
from async_pipeline.errors import PipelineError

PIPELINE = """\
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(name="p", tasks={"hello": task(sh("true"))},
                           jobs={"hello": job(target="hello")})
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "usage: async-pipeline"),
        (["--version"], f"async-pipeline {__version__}"),
        (["list", "--help"], "usage: async-pipeline list"),
        (["runs", "show", "--help"], "usage: async-pipeline runs show"),
    ],
)
def test_help_and_version_are_captured_not_printed_to_the_process(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    result = run_pipeline_cli(args, cwd=project)
    assert result.exit_code == 0
    assert expected in result.stdout
    assert result.stderr == ""
    assert capsys.readouterr().out == ""


def test_the_cli_main_writes_help_to_the_stdout_it_is_given(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from async_pipeline.cli import main

    out = io.StringIO()
    assert main(["--help"], cwd=project, stdout=out, stderr=io.StringIO()) == 0
    assert "usage: async-pipeline" in out.getvalue()
    assert capsys.readouterr().out == ""


def test_a_tuple_of_arguments_is_accepted(project: Path) -> None:
    result = run_pipeline_cli(("list",), cwd=project)
    assert result.exit_code == 0 and "hello" in result.stdout


@pytest.mark.parametrize("args", ["list", b"list", [1], ["list", None], None, {"list": 1}])
def test_arguments_that_are_not_a_list_of_strings_are_a_usage_error(
    project: Path, args: Any
) -> None:
    with pytest.raises(PipelineError) as raised:
        run_pipeline_cli(args, cwd=project)
    assert raised.value.code == "ASYNC_PIPELINE_USAGE"
    assert "args" in raised.value.message


def test_a_cwd_that_is_not_a_directory_is_a_usage_error(project: Path) -> None:
    for cwd in (project / "missing", project / "pipeline.py"):
        with pytest.raises(PipelineError) as raised:
            run_pipeline_cli(["list"], cwd=cwd)
        assert raised.value.code == "ASYNC_PIPELINE_USAGE"
        assert "cwd" in raised.value.message


def test_an_env_value_that_is_not_a_string_is_a_usage_error(project: Path) -> None:
    with pytest.raises(PipelineError) as raised:
        run_pipeline_cli(["list"], cwd=project, env={"PATH": 1})  # type: ignore[dict-item]
    assert raised.value.code == "ASYNC_PIPELINE_USAGE"
    assert "PATH" in raised.value.message
