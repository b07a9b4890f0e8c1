"""Failure context packs: bounded, redacted, and enough to fix the failure in one read."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import jsonschema

from async_pipeline import define_pipeline, env, job, sh, task
from async_pipeline.runner import run_job
from async_pipeline.runner.context_pack import MAX_PACK_BYTES
from async_pipeline.runner.records import RUNS_DIR
from async_pipeline.testing import new_canary, scan_for_canary
from tests.conftest import SCHEMAS, run_cli

BASE_ENV = {"PATH": os.environ["PATH"]}
PACK_SCHEMA = json.loads((SCHEMAS / "context-pack.schema.json").read_text())


def _pack(root: Path, run_id: str, task_id: str) -> dict[str, Any]:
    path = root / RUNS_DIR / run_id / "context" / f"{task_id}.json"
    assert path.stat().st_size < MAX_PACK_BYTES
    pack: dict[str, Any] = json.loads(path.read_text())
    jsonschema.validate(pack, PACK_SCHEMA)
    return pack


def test_a_failed_task_leaves_a_pack_and_a_passing_one_does_not(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        env={"TOKEN": env.secret("API_TOKEN"), "MODE": env.var("MODE", default="dev")},
        tasks={
            "ok": task(sh("echo fine")),
            "bad": task(sh("echo working; echo broken thing >&2; exit 3"), depends_on=["ok"]),
        },
        jobs={"j": job(target="bad")},
    )
    record = run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "API_TOKEN": "tok-123456"})
    assert not (tmp_path / RUNS_DIR / record.id / "context" / "ok.json").exists()
    pack = _pack(tmp_path, record.id, "bad")
    assert pack["error"]["code"] == "ASYNC_PIPELINE_TASK_FAILED"
    assert (pack["exitCode"], pack["attempts"], pack["jobId"]) == (3, 1, "j")
    assert pack["logTail"] == {
        "stdout": "working\n",
        "stderr": "broken thing\n",
        "truncated": False,
    }
    assert pack["reproduce"]["command"] == "async-pipeline run-task bad"
    assert pack["reproduce"]["env"] == ["API_TOKEN", "MODE"]
    assert pack["inputs"]["baselineMissing"] is True
    assert "tok-123456" not in json.dumps(pack)


def test_a_pack_stays_small_for_a_task_that_printed_100_mb(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"loud": task(sh("head -c 100000000 /dev/zero | tr '\\000' x; exit 1"))},
        jobs={"j": job(target="loud")},
    )
    record = run_job(pipeline, id="j", cwd=tmp_path, env=BASE_ENV)
    pack = _pack(tmp_path, record.id, "loud")
    assert pack["logTail"]["truncated"] is True
    assert len(pack["logTail"]["stdout"].encode()) <= 4096


def test_secrets_never_reach_a_pack(tmp_path: Path) -> None:
    canary = new_canary("pack")
    pipeline = define_pipeline(
        name="p",
        env={"TOKEN": env.secret("CANARY")},
        tasks={"t": task(sh('echo "$TOKEN"; echo "$TOKEN" | base64 >&2; exit 1'))},
        jobs={"j": job(target="t")},
    )
    record = run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "CANARY": canary})
    assert (tmp_path / RUNS_DIR / record.id / "context" / "t.json").exists()
    assert scan_for_canary(canary, trees=[tmp_path / ".async"]) == []


CALC_PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="calc",
    tasks={
        "test": task(
            sh("{python} tests/run.py"),
            inputs=["src/*.py", "tests/*.py"],
            cache=True,
        ),
    },
    jobs={"verify": job(target="test")},
)
"""

TEST_RUNNER = """
import sys
sys.path.insert(0, "src")
from calc import add, mul

failed = False
for title, ok in [("test_add_numbers", add(2, 3) == 5), ("test_mul_numbers", mul(2, 3) == 6)]:
    print(("PASS " if ok else "FAIL ") + title)
    failed = failed or not ok
sys.exit(1 if failed else 0)
"""


def test_the_agent_loop_break_read_the_pack_fix_and_the_diff_empties(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(CALC_PIPELINE.replace("{python}", sys.executable))
    (tmp_path / "src").mkdir()
    (tmp_path / "tests").mkdir()
    good = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
    (tmp_path / "src" / "calc.py").write_text(good)
    (tmp_path / "tests" / "run.py").write_text(TEST_RUNNER)
    (tmp_path / "tests" / "claims.json").write_text(
        json.dumps({"CLAIM-ADD": ["test_add_numbers"], "CLAIM-MUL": ["test_mul_numbers"]})
    )
    assert run_cli(["run", "verify"], tmp_path).code == 0

    (tmp_path / "src" / "calc.py").write_text(good.replace("a + b", "a - b"))
    failed = run_cli(["run", "verify", "--format", "json"], tmp_path)
    assert failed.code == 1
    run_id = json.loads(failed.stdout)["id"]
    packs = json.loads(run_cli(["explain", "--run", run_id, "--format", "json"], tmp_path).stdout)
    pack = packs["packs"]["test"]
    jsonschema.validate(pack, PACK_SCHEMA)
    assert [c["path"] for c in pack["inputs"]["changed"]] == ["src/calc.py"]
    assert pack["inputs"]["added"] == pack["inputs"]["removed"] == []
    assert pack["claims"] == ["CLAIM-ADD"]
    assert "FAIL test_add_numbers" in pack["logTail"]["stdout"]
    summary = run_cli(["explain", "--run", run_id], tmp_path).stdout
    assert "changed  src/calc.py" in summary and "CLAIM-ADD" in summary

    (tmp_path / "src" / "calc.py").write_text(good)
    assert run_cli(["run", "verify"], tmp_path).code == 0
    diff = json.loads(
        run_cli(["explain", "test", "--diff-inputs", "--format", "json"], tmp_path).stdout
    )
    assert (diff["added"], diff["removed"], diff["changed"]) == ([], [], [])


def test_explain_needs_a_task_or_a_run(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(CALC_PIPELINE.replace("{python}", sys.executable))
    for args in (
        ["explain"],
        ["explain", "test", "--run", "x"],
        ["explain", "--run", "x", "--diff-inputs"],
    ):
        result = run_cli(args, tmp_path)
        assert result.code == 1 and "ASYNC_PIPELINE_USAGE" in result.stderr
