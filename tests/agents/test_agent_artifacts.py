"""Landing ``stdout_to``: checked when written, never outside the task's directory, and a path
that cannot be written is a failed task with its context pack, never a crashed run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from async_pipeline import agent, define_pipeline, job, sh, task
from async_pipeline.agents.artifact import LandingError, land
from async_pipeline.runner import run_job
from async_pipeline.runner.records import RUNS_DIR
from tests.conftest import SCHEMAS

PACK_SCHEMA = json.loads((SCHEMAS / "context-pack.schema.json").read_text())


def _agent(tmp_path: Path, body: str) -> list[str]:
    """A CLI adapter running ``body`` (Python) after reading the prompt from stdin."""
    script = tmp_path / "agent.py"
    script.write_text("import os, sys\nsys.stdin.read()\n" + body)
    return [sys.executable, str(script)]


def _run(root: Path, command: list[str], stdout_to: str, **task_kw: Any) -> Any:
    pipeline = define_pipeline(
        name="artifacts",
        agents={"a": {"command": command, "model": "m"}},
        tasks={"propose": task(agent(use="a", prompt="go", stdout_to=stdout_to), **task_kw)},
        jobs={"j": job(target="propose")},
    )
    return run_job(pipeline, id="j", cwd=root, env={"PATH": os.environ["PATH"]})


def _pack(root: Path, run_id: str, task_id: str) -> dict[str, Any]:
    pack: dict[str, Any] = json.loads(
        (root / RUNS_DIR / run_id / "context" / f"{task_id}.json").read_text()
    )
    jsonschema.validate(pack, PACK_SCHEMA)
    return pack


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


def test_a_symlink_the_agent_plants_while_it_runs_does_not_lead_the_artifact_out(
    tmp_path: Path,
) -> None:
    root, outside = _repo(tmp_path), tmp_path / "outside"
    outside.mkdir()
    (root / "out").mkdir()  # looks fine before the agent runs
    command = _agent(
        tmp_path,
        "import shutil\n"
        "shutil.rmtree('out')\n"
        f"os.symlink({str(outside)!r}, 'out')\n"
        "print('proposal')\n",
    )
    record = _run(root, command, "out/proposal.txt", outputs=["out/proposal.txt"])
    result = record.tasks[0]
    assert (record.status, result.status) == ("failed", "failed")
    assert result.error is not None and result.error.code == "ASYNC_PIPELINE_INVALID_PATH"
    assert list(outside.iterdir()) == []
    assert _pack(root, record.id, "propose")["error"]["code"] == "ASYNC_PIPELINE_INVALID_PATH"


def test_a_symlink_planted_deeper_or_at_the_name_is_not_written_through(tmp_path: Path) -> None:
    root, outside = _repo(tmp_path), tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("keep me\n")
    command = _agent(
        tmp_path,
        "os.makedirs('a/b', exist_ok=True)\n"
        f"os.symlink({str(outside / 'target.txt')!r}, 'a/b/p.txt')\n"
        "print('proposal')\n",
    )
    record = _run(root, command, "a/b/p.txt")
    assert record.status == "passed", record.tasks[0].error
    # The link at the name itself is replaced by the file, its target left alone.
    assert not (root / "a" / "b" / "p.txt").is_symlink()
    assert (root / "a" / "b" / "p.txt").read_text() == "proposal\n"
    assert (outside / "target.txt").read_text() == "keep me\n"


@pytest.mark.parametrize(
    ("stdout_to", "prepare"),
    [
        ("outdir", lambda root: (root / "outdir").mkdir()),
        ("afile/x.txt", lambda root: (root / "afile").write_text("")),
    ],
    ids=["existing-directory", "file-in-the-way"],
)
def test_a_path_that_cannot_be_written_is_a_failed_task_with_a_pack(
    tmp_path: Path, stdout_to: str, prepare: Any
) -> None:
    root = _repo(tmp_path)
    prepare(root)
    record = _run(root, _agent(tmp_path, "print('proposal')\n"), stdout_to, outputs=[stdout_to])
    result = record.tasks[0]
    assert (record.status, result.status, record.interrupted) == ("failed", "failed", None)
    assert result.error is not None and result.error.code == "ASYNC_PIPELINE_INVALID_PATH"
    assert _pack(root, record.id, "propose")["error"]["code"] == "ASYNC_PIPELINE_INVALID_PATH"


def test_a_directory_the_agent_makes_at_the_name_fails_the_task_when_it_is_written(
    tmp_path: Path,
) -> None:
    root = _repo(tmp_path)
    command = _agent(tmp_path, "os.makedirs('out/p.txt')\nprint('proposal')\n")
    record = _run(root, command, "out/p.txt", outputs=["out/p.txt"])
    result = record.tasks[0]
    assert (record.status, result.status, record.interrupted) == ("failed", "failed", None)
    assert result.error is not None and result.error.code == "ASYNC_PIPELINE_INVALID_PATH"
    pack = _pack(root, record.id, "propose")
    assert pack["transcript"] == "agents/propose.jsonl"
    response = json.loads(
        (root / RUNS_DIR / record.id / pack["transcript"]).read_text().splitlines()[-1]
    )
    assert response["exitCode"] == 0
    assert response["error"]["code"] == "ASYNC_PIPELINE_INVALID_PATH"


def test_missing_directories_are_made_and_a_symlink_that_stays_inside_is_followed(
    tmp_path: Path,
) -> None:
    root = _repo(tmp_path)
    (root / "real").mkdir()
    (root / "linked").symlink_to(root / "real")
    command = _agent(tmp_path, "print('proposal')\n")
    record = _run(root, command, "linked/new/deeper/p.md")
    assert record.status == "passed", record.tasks[0].error
    assert (root / "real" / "new" / "deeper" / "p.md").read_text() == "proposal\n"
    assert [p.name for p in (root / "real" / "new" / "deeper").iterdir()] == ["p.md"]


def test_land_refuses_a_path_that_climbs(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    with pytest.raises(LandingError):
        land(root, "../escaped.txt", b"x")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_verifier_still_reads_what_landed(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    pipeline = define_pipeline(
        name="artifacts",
        agents={"a": {"command": _agent(tmp_path, "print('# ok')\n"), "model": "m"}},
        tasks={
            "propose": task(agent(use="a", prompt="go", stdout_to="p/x.md"), outputs=["p/x.md"]),
            "verify": task(sh("grep -q '# ok' p/x.md"), depends_on=["propose"]),
        },
        jobs={"j": job(target="verify")},
    )
    record = run_job(pipeline, id="j", cwd=root, env={"PATH": os.environ["PATH"]})
    assert record.status == "passed"
