"""run_job / arun_job check every argument before anything is created: a wrong one is a
PipelineError naming it, never a Python error from inside the run or a record of a run."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import define_pipeline, job, sh, task
from async_pipeline.errors import PipelineError
from async_pipeline.runner import arun_job, run_job
from async_pipeline.testing import FakeExecutor

ENV = {"PATH": os.defpath}


def _pipeline() -> Any:
    return define_pipeline(name="p", tasks={"a": task(sh("x"))}, jobs={"all": job(target="a")})


def _rejected(tmp_path: Path, code: str = "ASYNC_PIPELINE_USAGE", **call: Any) -> PipelineError:
    """Run with ``call`` over the defaults; the error, after checking nothing ran or was made."""
    executor = FakeExecutor()
    arguments: dict[str, Any] = {
        "pipeline": _pipeline(),
        "id": "all",
        "cwd": tmp_path,
        "env": ENV,
        "executor": executor,
        **call,
    }
    pipeline = arguments.pop("pipeline")
    with pytest.raises(PipelineError) as raised:
        run_job(pipeline, **arguments)
    assert raised.value.code == code, raised.value
    assert executor.calls == []
    assert not (tmp_path / ".async").exists()
    return raised.value


def test_a_run_with_good_arguments_passes(tmp_path: Path) -> None:
    record = run_job(_pipeline(), id="all", cwd=tmp_path, env=ENV, executor=FakeExecutor())
    assert record.status == "passed"


def test_a_cwd_that_does_not_exist_is_a_usage_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    error = _rejected(tmp_path, cwd=missing)
    assert "cwd" in error.message
    assert not (tmp_path / "no").exists()


def test_a_cwd_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    file = tmp_path / "pipeline.py"
    file.write_text("")
    error = _rejected(tmp_path, cwd=file)
    assert "cwd" in error.message


@pytest.mark.parametrize("cwd", [5, b"/tmp", object()])
def test_a_cwd_that_is_no_path_is_a_usage_error(tmp_path: Path, cwd: object) -> None:
    assert "cwd" in _rejected(tmp_path, cwd=cwd).message


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({**ENV, "X": 1}, "X"),
        ({**ENV, "X": None}, "X"),
        ({**ENV, "X": "a\0b"}, "X"),
        ({**ENV, "A=B": "1"}, "A=B"),
        ({**ENV, "": "1"}, "env"),
        ({**ENV, "A\0": "1"}, "env"),
        ({**ENV, 5: "1"}, "env"),
        ([("PATH", os.defpath)], "env"),
        ("PATH=/bin", "env"),
    ],
)
def test_an_env_that_a_process_cannot_take_is_a_usage_error_naming_the_key(
    tmp_path: Path, env: object, named: str
) -> None:
    assert named in _rejected(tmp_path, env=env).message


def test_an_env_error_never_shows_the_value(tmp_path: Path) -> None:
    error = _rejected(tmp_path, env={**ENV, "TOKEN": "s3cret-value\0"})
    assert "s3cret" not in str(error)


@pytest.mark.parametrize(
    "executor", [object(), FakeExecutor, "host", type("OnlyName", (), {"name": "x"})()]
)
def test_an_executor_that_is_no_command_executor_instance_is_a_usage_error(
    tmp_path: Path, executor: object
) -> None:
    assert "executor" in _rejected(tmp_path, executor=executor).message


def test_the_executor_class_instead_of_an_instance_says_to_instantiate_it(tmp_path: Path) -> None:
    error = _rejected(tmp_path, executor=FakeExecutor)
    assert "FakeExecutor()" in str(error)


@pytest.mark.parametrize("reporter", [object(), "lines"])
def test_a_reporter_without_the_reporter_methods_is_a_usage_error(
    tmp_path: Path, reporter: object
) -> None:
    assert "reporter" in _rejected(tmp_path, reporter=reporter).message


@pytest.mark.parametrize(
    ("name", "value"),
    [("id", 123), ("id", None), ("task", 5), ("force", "no"), ("echo", 1), ("mode", 2)],
)
def test_an_argument_of_the_wrong_type_is_a_usage_error_naming_it(
    tmp_path: Path, name: str, value: object
) -> None:
    assert name in _rejected(tmp_path, **{name: value}).message


@pytest.mark.parametrize("pipeline", [None, "pipeline.py", {"name": "p"}])
def test_something_other_than_a_pipeline_is_a_usage_error(tmp_path: Path, pipeline: object) -> None:
    assert "pipeline" in _rejected(tmp_path, pipeline=pipeline).message


def test_a_misspelt_option_is_an_unknown_field_with_the_nearest_option(tmp_path: Path) -> None:
    error = _rejected(tmp_path, "ASYNC_PIPELINE_UNKNOWN_FIELD", concurency=2)
    assert error.path == "concurency"
    assert error.hint is not None and '"concurrency"' in error.hint
    assert "execute_job" not in str(error)


@pytest.mark.parametrize("internal", ["preflight", "stop"])
def test_internal_parameters_are_not_options_of_the_public_api(
    tmp_path: Path, internal: str
) -> None:
    _rejected(tmp_path, "ASYNC_PIPELINE_UNKNOWN_FIELD", **{internal: None})


@pytest.mark.parametrize(
    ("name", "value"), [("sandbox", "docker"), ("execution", "local"), ("provider", "lima")]
)
def test_sandbox_options_are_accepted_and_still_unavailable(
    tmp_path: Path, name: str, value: str
) -> None:
    _rejected(tmp_path, "ASYNC_PIPELINE_SANDBOX_UNAVAILABLE", **{name: value})


def test_arun_job_checks_its_options_too(tmp_path: Path) -> None:
    async def main() -> None:
        await arun_job(_pipeline(), id="all", cwd=tmp_path, env=ENV, concurency=2)

    with pytest.raises(PipelineError) as raised:
        asyncio.run(main())
    assert raised.value.code == "ASYNC_PIPELINE_UNKNOWN_FIELD"
    assert not (tmp_path / ".async").exists()


def test_run_job_inside_a_running_event_loop_is_a_usage_error_pointing_at_arun_job(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        run_job(_pipeline(), id="all", cwd=tmp_path, env=ENV, executor=FakeExecutor())

    with pytest.raises(PipelineError) as raised:
        asyncio.run(main())
    assert raised.value.code == "ASYNC_PIPELINE_USAGE"
    assert "arun_job" in str(raised.value)
    assert not (tmp_path / ".async").exists()


def test_arun_job_inside_a_running_event_loop_runs(tmp_path: Path) -> None:
    async def main() -> str:
        record = await arun_job(
            _pipeline(), id="all", cwd=tmp_path, env=ENV, executor=FakeExecutor()
        )
        return record.status

    assert asyncio.run(main()) == "passed"
