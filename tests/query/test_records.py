"""Reading runs someone else may have written: bad records, links out, odd task ids, cursors.

Everything under ``.async/runs`` can be crafted, so each reader must answer with an error
code (or an unreadable marker in a list) rather than a traceback, and read nothing that
does not really lie inside the run's own directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import query
from async_pipeline.errors import QueryError
from async_pipeline.query import _runs
from async_pipeline.query._records import RECORD_SHAPE, shape_problem
from tests.conftest import run_cli, run_cli_process

PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="records",
    tasks={"fail": task(sh("echo out; echo err >&2; exit 2"))},
    jobs={"fail": job(target="fail")},
)
"""
SECRET = "outside the repository: never read"


@pytest.fixture
def failed_run(tmp_path: Path) -> tuple[Path, str]:
    """A project (in ``tmp_path/repo``) with one failed run; its root and run id."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pipeline.py").write_text(PIPELINE)
    result = run_cli(["run", "fail", "--format", "json"], root)
    run_id: str = json.loads(result.stdout)["id"]
    return root, run_id


def _run_dir(root: Path, run_id: str) -> Path:
    return root / ".async" / "runs" / run_id


def _record(root: Path, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_run_dir(root, run_id) / "execution.json").read_text())
    return data


def _outside(tmp_path: Path, name: str, text: str = SECRET) -> Path:
    path = tmp_path / "outside" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A change to a record: ``tasks.0.id`` set to ``value`` (``...`` deletes the field)."""

    def change(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = record
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value

    return change


WRONG_SHAPES = {
    "tasks null": _set("tasks", None),
    "tasks a number": _set("tasks", 5),
    "tasks a string": _set("tasks", "x"),
    "task not an object": _set("tasks", [5]),
    "task id a number": _set("tasks.0.id", 5),
    "task status missing": _set("tasks.0.status", ...),
    "task error a string": _set("tasks.0.error", "oops"),
    "task cacheHit a string": _set("tasks.0.cacheHit", "yes"),
    "jobId null": _set("jobId", None),
    "status missing": _set("status", ...),
    "interrupted a number": _set("interrupted", 5),
    "warnings a number": _set("warnings", 5),
    "schemaVersion 2": _set("schemaVersion", 2),
    "schemaVersion true": _set("schemaVersion", True),
}


@pytest.fixture(params=sorted(WRONG_SHAPES))
def bad_run(request: pytest.FixtureRequest, failed_run: tuple[Path, str]) -> tuple[Path, str]:
    """A second run beside ``failed_run`` whose record has one field of the wrong shape."""
    root, good = failed_run
    record = _record(root, good)
    WRONG_SHAPES[request.param](record)
    bad = "20000101T000000000Z-bad000"
    _run_dir(root, bad).mkdir()
    (_run_dir(root, bad) / "execution.json").write_text(json.dumps(record))
    return root, bad


def test_a_record_of_the_wrong_shape_is_listed_as_unreadable_beside_the_others(
    bad_run: tuple[Path, str],
) -> None:
    root, bad = bad_run
    listing = query.list_runs(root).model_dump(mode="json", by_alias=True)
    good_summary, bad_summary = listing["runs"]
    assert good_summary["status"] == "failed" and good_summary["error"] is None
    assert bad_summary["id"] == bad and bad_summary["error"]
    assert (bad_summary["jobId"], bad_summary["status"], bad_summary["taskCounts"]) == (
        None,
        None,
        {},
    )
    text = run_cli(["runs"], root)
    assert text.code == 0, text.stderr
    assert f"{bad}  unreadable: " in text.stdout and "None" not in text.stdout


def test_reading_a_record_of_the_wrong_shape_is_run_unreadable(bad_run: tuple[Path, str]) -> None:
    root, bad = bad_run
    for read in (query.read_run, _runs.context_packs):
        with pytest.raises(QueryError) as caught:
            read(root, bad)
        assert caught.value.code == "ASYNC_PIPELINE_RUN_UNREADABLE"
    for args in (["runs", "show", bad], ["explain", "--run", bad]):
        result = run_cli(args, root)
        assert result.code == 1 and "ASYNC_PIPELINE_RUN_UNREADABLE" in result.stderr, args
        assert "INTERNAL" not in result.stderr


@pytest.mark.parametrize(
    "body",
    [b'{"tasks": null}', b'{"schemaVersion":1,"id":"zzz","tasks":"x"}', b"[]", b"null"],
    ids=repr,
)
def test_a_record_missing_most_fields_is_unreadable(
    failed_run: tuple[Path, str], body: bytes
) -> None:
    root, _ = failed_run
    bad = "20000101T000000000Z-bad000"
    _run_dir(root, bad).mkdir()
    (_run_dir(root, bad) / "execution.json").write_bytes(body)
    assert query.list_runs(root).runs[-1].error
    with pytest.raises(QueryError) as caught:
        query.read_run(root, bad)
    assert caught.value.code == "ASYNC_PIPELINE_RUN_UNREADABLE"


def test_a_shape_problem_names_the_first_field_that_differs() -> None:
    record = {"schemaVersion": 1, "id": "r", "pipelineName": "p", "jobId": "j"}
    record |= {"status": "passed", "startedAt": "t", "finishedAt": None, "interrupted": None}
    assert shape_problem({**record, "tasks": []}, RECORD_SHAPE) is None
    problem = shape_problem({**record, "tasks": [{"id": "a", "status": 3}]}, RECORD_SHAPE)
    assert problem is not None and problem.startswith("tasks[0].status ")


@pytest.mark.parametrize(
    "task_id", ["../fail", "a\x00b", "/etc/passwd", "logs/../../fail", ".", "..", "a\\b"], ids=repr
)
def test_a_task_id_that_is_not_a_file_name_names_no_log_file(
    failed_run: tuple[Path, str], task_id: str
) -> None:
    root, run_id = failed_run
    run_dir = _run_dir(root, run_id)
    for stream in ("stdout", "stderr"):  # where "../fail" and "logs/../../fail" would lead
        (run_dir / f"fail.{stream}.log").write_text(SECRET)
        (run_dir.parent / f"fail.{stream}.log").write_text(SECRET)
    record = _record(root, run_id)
    record["tasks"].append({**record["tasks"][0], "id": task_id})
    (run_dir / "execution.json").write_text(json.dumps(record))
    details = query.read_run(root, run_id).model_dump(mode="json", by_alias=True)
    assert list(details["logs"]) == ["fail"]
    assert details["logs"]["fail"]["stderr"]["text"] == "err\n"
    assert SECRET not in json.dumps(details)


def test_a_log_linked_out_of_the_run_is_not_read(
    tmp_path: Path, failed_run: tuple[Path, str]
) -> None:
    root, run_id = failed_run
    log = _run_dir(root, run_id) / "logs" / "fail.stderr.log"
    log.unlink()
    log.symlink_to(_outside(tmp_path, "secret.log"))
    details = query.read_run(root, run_id).model_dump(mode="json", by_alias=True)
    assert details["logs"]["fail"]["stderr"] == {"text": "", "bytes": 0, "truncated": False}
    assert details["logs"]["fail"]["stdout"]["text"] == "out\n"


def test_a_context_pack_linked_out_of_the_run_is_not_read(
    tmp_path: Path, failed_run: tuple[Path, str]
) -> None:
    root, run_id = failed_run
    outside = _outside(tmp_path, "pack.json", json.dumps({"claims": [SECRET]}))
    (_run_dir(root, run_id) / "context" / "other.json").symlink_to(outside)
    details = query.read_run(root, run_id)
    assert list(details.context_packs) == ["fail"]


def test_a_context_pack_of_the_wrong_shape_is_left_out(failed_run: tuple[Path, str]) -> None:
    root, run_id = failed_run
    pack = _run_dir(root, run_id) / "context" / "fail.json"
    pack.write_text(json.dumps({**json.loads(pack.read_text()), "error": "oops"}))
    assert query.read_run(root, run_id).context_packs == {}
    result = run_cli(["explain", "--run", run_id], root)
    assert result.code == 0, result.stderr


def test_a_run_directory_linked_out_of_runs_is_listed_unreadable_and_not_read(
    tmp_path: Path, failed_run: tuple[Path, str]
) -> None:
    root, run_id = failed_run
    outside = _outside(tmp_path, "execution.json", json.dumps(_record(root, run_id)))
    linked = "20300101T000000000Z-link00"
    _run_dir(root, linked).symlink_to(outside.parent, target_is_directory=True)
    newest = query.list_runs(root).runs[0]
    assert newest.id == linked and newest.error and newest.job_id is None
    with pytest.raises(QueryError) as caught:
        query.read_run(root, linked)
    assert caught.value.code == "ASYNC_PIPELINE_RUN_UNREADABLE"


def test_a_record_linked_out_of_its_run_is_unreadable(
    tmp_path: Path, failed_run: tuple[Path, str]
) -> None:
    root, run_id = failed_run
    record = _run_dir(root, run_id) / "execution.json"
    outside = _outside(tmp_path, "execution.json", record.read_text())
    record.unlink()
    record.symlink_to(outside)
    assert query.list_runs(root).runs[0].error
    with pytest.raises(QueryError) as caught:
        query.read_run(root, run_id)
    assert caught.value.code == "ASYNC_PIPELINE_RUN_UNREADABLE"


def test_a_fifo_in_place_of_a_log_or_a_pack_is_not_waited_on(
    failed_run: tuple[Path, str],
) -> None:
    root, run_id = failed_run
    run_dir = _run_dir(root, run_id)
    (run_dir / "logs" / "fail.stdout.log").unlink()
    os.mkfifo(run_dir / "logs" / "fail.stdout.log")
    os.mkfifo(run_dir / "context" / "other.json")
    # A real process, so a reader that blocks on a FIFO fails the test by its timeout.
    result = run_cli_process(["runs", "show", run_id, "--format", "json"], root, timeout=30)
    assert result.code == 0, result.stderr
    details = json.loads(result.stdout)
    assert details["logs"]["fail"]["stdout"]["bytes"] == 0
    assert list(details["contextPacks"]) == ["fail"]


def test_a_directory_named_unlike_a_run_id_is_not_listed(failed_run: tuple[Path, str]) -> None:
    root, run_id = failed_run
    odd = _run_dir(root, "not a run?")
    odd.mkdir()
    (odd / "execution.json").write_text(json.dumps(_record(root, run_id)))
    assert [run.id for run in query.list_runs(root).runs] == [run_id]


@pytest.mark.parametrize("cursor", ["nope", "20000101T000000000Z-aaaaaa", "../../etc"])
def test_a_cursor_that_names_no_run_is_unknown_run(
    failed_run: tuple[Path, str], cursor: str
) -> None:
    root, _ = failed_run
    with pytest.raises(QueryError) as caught:
        query.list_runs(root, cursor=cursor)
    assert caught.value.code == "ASYNC_PIPELINE_UNKNOWN_RUN"
    result = run_cli(["runs", "--cursor", cursor], root)
    assert result.code != 0 and "ASYNC_PIPELINE_UNKNOWN_RUN" in result.stderr


def test_a_cursor_naming_the_oldest_run_gives_an_empty_last_page(
    failed_run: tuple[Path, str],
) -> None:
    root, run_id = failed_run
    page = query.list_runs(root, cursor=run_id)
    assert (page.total, page.runs, page.next_cursor) == (1, [], None)


def test_a_record_left_running_by_a_process_that_is_gone_is_shown_abandoned(
    failed_run: tuple[Path, str],
) -> None:
    from async_pipeline.runner.lock import RunLock

    root, run_id = failed_run
    record = _record(root, run_id)
    record["status"], record["finishedAt"] = "running", None  # as a killed runner leaves it
    (_run_dir(root, run_id) / "execution.json").write_text(json.dumps(record))
    assert _runs.list_runs(root)["runs"][0]["status"] == "abandoned"
    assert _runs.read_run(root, run_id)["record"]["status"] == "abandoned"
    assert "abandoned" in run_cli(["runs"], root).stdout
    # While its run holds the lock, the run is really running.
    with RunLock(root, run_id):
        assert _runs.list_runs(root)["runs"][0]["status"] == "running"
        assert _runs.read_run(root, run_id)["record"]["status"] == "running"
    with RunLock(root, "20990101T000000000Z-other0"):  # another run holds it
        assert _runs.list_runs(root)["runs"][0]["status"] == "abandoned"
