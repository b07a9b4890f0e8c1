"""Run lists, run details and input diffs: read-only answers about what ran."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from async_pipeline import query
from async_pipeline.core.loader import load_pipeline
from async_pipeline.errors import QueryError
from async_pipeline.query import _runs
from tests.conftest import SCHEMAS, run_cli

PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="runs",
    tasks={
        "build": task(
            sh("mkdir -p dist && cat src/*.txt > dist/out.txt && echo built"),
            inputs=["src/*.txt"],
            outputs=["dist/out.txt"],
            cache=True,
        ),
        "fail": task(sh("echo about to fail; echo oops >&2; exit 2")),
    },
    jobs={"build": job(target="build"), "fail": job(target="fail")},
)
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    (tmp_path / "src" / "b.txt").write_text("b\n")
    return tmp_path


def _json(args: list[str], cwd: Path) -> Any:
    result = run_cli([*args, "--format", "json"], cwd)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / ".async").rglob("*"))
        if p.is_file()
    }


def test_runs_are_listed_newest_first_a_page_at_a_time(tmp_path: Path) -> None:
    root = _project(tmp_path)
    ids = [
        json.loads(run_cli(["run", "build", "--format", "json"], root).stdout)["id"]
        for _ in range(5)
    ]
    first = _json(["runs", "--limit", "2"], root)
    jsonschema.validate(first, _schema("run-list.schema.json"))
    assert [r["id"] for r in first["runs"]] == ids[::-1][:2]
    assert first["total"] == 5 and first["nextCursor"] == ids[3]
    second = _json(["runs", "--limit", "2", "--cursor", first["nextCursor"]], root)
    third = _json(["runs", "--limit", "2", "--cursor", second["nextCursor"]], root)
    assert [r["id"] for r in second["runs"] + third["runs"]] == ids[::-1][2:]
    assert third["nextCursor"] is None
    assert first["runs"][0]["taskCounts"] == {"passed": 1}
    assert first == query.list_runs(root, limit=2).model_dump(mode="json", by_alias=True)


def test_an_unreadable_record_is_listed_with_its_reason(tmp_path: Path) -> None:
    root = _project(tmp_path)
    run_cli(["run", "build"], root)
    broken = root / ".async" / "runs" / "20000101T000000000Z-aaaaaa"
    broken.mkdir()
    (broken / "execution.json").write_text("{truncated")
    listing = _json(["runs"], root)
    assert listing["runs"][-1]["error"] == "the record is not valid JSON"
    result = run_cli(["runs", "show", broken.name], root)
    assert result.code == 1 and "ASYNC_PIPELINE_RUN_UNREADABLE" in result.stderr
    assert (broken / "execution.json").read_text() == "{truncated"


def test_a_run_shows_its_record_and_capped_log_tails(tmp_path: Path) -> None:
    root = _project(tmp_path)
    record = json.loads(run_cli(["run", "fail", "--format", "json"], root).stdout)
    details = _json(["runs", "show", record["id"], "--max-log-bytes", "6"], root)
    jsonschema.validate(details, _schema("run-details.schema.json"))
    assert details["record"] == record
    assert details["logs"]["fail"]["stderr"] == {"text": "oops\n", "bytes": 5, "truncated": False}
    assert details["logs"]["fail"]["stdout"] == {"text": " fail\n", "bytes": 14, "truncated": True}
    assert details == query.read_run(root, record["id"], max_log_bytes=6).model_dump(
        mode="json", by_alias=True
    )
    text = run_cli(["runs", "show", record["id"]], root)
    assert "oops" in text.stdout


@pytest.mark.parametrize("run_id", ["../../etc", "nope", "a/b", ""])
def test_unknown_or_malformed_run_ids_are_refused(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(QueryError) as caught:
        _runs.read_run(_project(tmp_path), run_id)
    assert caught.value.code == "ASYNC_PIPELINE_UNKNOWN_RUN"


def test_diff_inputs_reports_changes_since_the_last_pass_by_digest(tmp_path: Path) -> None:
    root = _project(tmp_path)
    missing = _json(["explain", "build", "--diff-inputs"], root)
    assert missing["baselineMissing"] is True
    assert run_cli(["run", "build"], root).code == 0
    clean = _json(["explain", "build", "--diff-inputs"], root)
    assert (clean["baselineMissing"], clean["added"], clean["changed"], clean["unchanged"]) == (
        False,
        [],
        [],
        2,
    )
    (root / "src" / "a.txt").write_text("a changed\n")
    (root / "src" / "b.txt").unlink()
    (root / "src" / "c.txt").write_text("new\n")
    before = _snapshot(root)
    diff = _json(["explain", "build", "--diff-inputs"], root)
    jsonschema.validate(diff, _schema("input-diff.schema.json"))
    digest = hashlib.sha256(b"a changed\n").hexdigest()
    assert [c["path"] for c in diff["changed"]] == ["src/a.txt"]
    assert diff["changed"][0]["after"] == digest
    assert diff["removed"] == [{"path": "src/b.txt", "digest": hashlib.sha256(b"b\n").hexdigest()}]
    assert diff["added"] == [{"path": "src/c.txt", "digest": hashlib.sha256(b"new\n").hexdigest()}]
    assert "a changed" not in json.dumps(diff)
    assert _snapshot(root) == before  # inspection never writes under .async/
    assert diff == query.diff_inputs(load_pipeline(cwd=root), "build").model_dump(
        mode="json", by_alias=True
    )
    text = run_cli(["explain", "build", "--diff-inputs"], root).stdout
    assert "changed  src/a.txt" in text


def test_limit_outside_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(QueryError):
        _runs.list_runs(tmp_path, limit=0)
    assert _runs.list_runs(tmp_path)["runs"] == []
    assert os.listdir(tmp_path) == []
