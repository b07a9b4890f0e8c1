"""The agent-claims-repair example end to end, and doctor's checks."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from async_pipeline.runner.lock import LOCK_FILE
from tests.conftest import EXAMPLES, run_cli_process

EXAMPLE = EXAMPLES / "agent-claims-repair"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    copy = tmp_path / "agent-claims-repair"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(".async", "proposals"))
    return copy


def _run(cwd: Path, *args: str, **env: str) -> tuple[int, dict[str, object]]:
    result = run_cli_process(["run", "repair", "--format", "json", *args], cwd, env=env)
    return result.code, json.loads(result.stdout)


def test_the_example_proposes_verifies_and_is_fully_cached_the_second_time(example: Path) -> None:
    code, first = _run(example)
    assert code == 0, first
    assert "(1 - discount)" in (example / "proposals" / "pricing.py").read_text()
    assert "(1 - discount)" not in (example / "src" / "pricing.py").read_text()  # propose-only
    code, second = _run(example)
    assert code == 0
    tasks = second["tasks"]
    assert isinstance(tasks, list)
    assert [t["cacheHit"] for t in tasks] == [True, True]
    assert not (example / ".async" / "runs" / str(second["id"]) / "agents").exists()


def test_a_wrong_proposal_is_rejected_by_the_verifier(example: Path) -> None:
    code, record = _run(example, MOCK_AGENT_MODE="wrong")
    assert code == 1
    tasks = record["tasks"]
    assert isinstance(tasks, list)
    assert [t["status"] for t in tasks] == ["passed", "failed"]
    pack = json.loads(
        (example / ".async" / "runs" / str(record["id"]) / "context" / "verify.json").read_text()
    )
    assert "REJECT" in pack["logTail"]["stdout"]


def _doctor(cwd: Path) -> tuple[int, dict[str, object]]:
    result = run_cli_process(["doctor", "--format", "json"], cwd)
    return result.code, json.loads(result.stdout)


def test_doctor_passes_the_example(example: Path) -> None:
    code, report = _doctor(example)
    assert code == 0 and report["ok"] is True and report["findings"] == []


def test_doctor_warns_about_unverifiable_or_unswitchable_agents(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(
        "from async_pipeline import agent, define_pipeline, job, task, trigger\n"
        "pipeline = define_pipeline(\n"
        "    name='d',\n"
        # An adapter that is there: a missing one would be an error of its own.
        f"    agents={{'live': {{'command': [{sys.executable!r}, '-c', 'pass'], 'model': 'm'}}}},\n"
        "    triggers={'push': trigger.github(events=['push'])},\n"
        "    tasks={'write': task(agent(use='live', prompt='x'))},\n"
        "    jobs={'ci': job(target='write', trigger='push')},\n"
        ")\n"
    )
    code, report = _doctor(tmp_path)
    assert code == 0
    findings = report["findings"]
    assert isinstance(findings, list)
    assert sorted(f["code"] for f in findings) == ["agent-in-ci", "agent-without-outputs"]
    assert {f["level"] for f in findings} == {"warning"}


def test_doctor_errors_on_missing_tools_and_broken_pipelines(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(
        "from async_pipeline import define_pipeline, sh, task\n"
        "pipeline = define_pipeline(name='d', tasks={'t': task(sh('x'),"
        " requires={'tools': ['no-such-tool-xyz']})})\n"
    )
    code, report = _doctor(tmp_path)
    assert code == 1
    findings = report["findings"]
    assert isinstance(findings, list)
    assert findings[0]["code"] == "ASYNC_PIPELINE_TOOL_MISSING"
    (tmp_path / "pipeline.py").write_text("pipeline = define_pipeline(\n")
    code, report = _doctor(tmp_path)
    assert code == 1
    findings = report["findings"]
    assert isinstance(findings, list)
    assert findings[0]["code"] == "ASYNC_PIPELINE_CONFIG_SYNTAX"


def test_doctor_reports_a_stale_lock_left_by_a_dead_run(example: Path) -> None:
    (example / LOCK_FILE).parent.mkdir(parents=True)
    (example / LOCK_FILE).write_text(json.dumps({"pid": 999999, "startTime": 1, "runId": "x"}))
    code, report = _doctor(example)
    assert code == 0
    findings = report["findings"]
    assert isinstance(findings, list)
    assert [f["code"] for f in findings] == ["stale-lock"]
    assert os.path.exists(example / LOCK_FILE)
