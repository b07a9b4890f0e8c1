"""What a failed or loud agent task leaves behind: a capped transcript, a context pack that names
it and the variables that reproduce the failure, and an error that says what went wrong."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import jsonschema

from async_pipeline import agent, define_pipeline, env, job, sh, task
from async_pipeline.redaction import TRUNCATION_MARKER
from async_pipeline.runner import run_job
from async_pipeline.runner.records import RUNS_DIR
from async_pipeline.testing import new_canary, scan_for_canary
from tests.conftest import SCHEMAS

PACK_SCHEMA = json.loads((SCHEMAS / "context-pack.schema.json").read_text())


def _agent(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "agent.py"
    script.write_text("import os, sys\nsys.stdin.read()\n" + body)
    return [sys.executable, str(script)]


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


def _pack(root: Path, run_id: str, task_id: str) -> dict[str, Any]:
    pack: dict[str, Any] = json.loads(
        (root / RUNS_DIR / run_id / "context" / f"{task_id}.json").read_text()
    )
    jsonschema.validate(pack, PACK_SCHEMA)
    return pack


def test_a_transcript_keeps_a_redacted_tail_within_the_log_cap(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    canary = new_canary("transcript", awkward=False)
    command = _agent(
        tmp_path,
        "sys.stdout.write('x' * 200_000)\nprint('secret', os.environ['TOKEN'])\nprint('END')\n",
    )
    pipeline = define_pipeline(
        name="loud",
        agents={"a": {"command": command, "model": "m"}},
        env={"TOKEN": env.secret("SOURCE_TOKEN")},
        tasks={"propose": task(agent(use="a", prompt="p" * 20_000, stdout_to="out.txt"))},
        jobs={"j": job(target="propose")},
    )
    record = run_job(
        pipeline,
        id="j",
        cwd=root,
        env={
            "PATH": os.environ["PATH"],
            "SOURCE_TOKEN": canary,
            "ASYNC_PIPELINE_MAX_LOG_BYTES": "8192",
        },
    )
    assert record.status == "passed", record.tasks[0].error
    agents_dir = root / RUNS_DIR / record.id / "agents"
    lines = (agents_dir / "propose.jsonl").read_text().splitlines()
    request, response = (json.loads(line) for line in lines)
    for text in (request["prompt"], response["stdout"]):
        assert len(text.encode()) <= 8192
        assert text.startswith(TRUNCATION_MARKER.decode())
    assert response["stdout"].endswith("END\n")
    assert (agents_dir / "propose.prompt.txt").read_text() == "p" * 20_000
    # The artifact is the agent's answer, not the transcript's excerpt of it.
    assert len((root / "out.txt").read_bytes()) > 200_000
    # The artifact holds what the agent printed; the run's own files never hold the secret.
    assert scan_for_canary(canary, trees=[root / ".async"]) == []


def test_a_transcript_is_whole_when_the_log_cap_is_off(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    pipeline = define_pipeline(
        name="loud",
        agents={
            "a": {"command": _agent(tmp_path, "sys.stdout.write('y' * 20_000)\n"), "model": "m"}
        },
        tasks={"propose": task(agent(use="a", prompt="go"))},
        jobs={"j": job(target="propose")},
    )
    env_ = {"PATH": os.environ["PATH"], "ASYNC_PIPELINE_MAX_LOG_BYTES": "0"}
    record = run_job(pipeline, id="j", cwd=root, env=env_)
    transcript = root / RUNS_DIR / record.id / "agents" / "propose.jsonl"
    assert json.loads(transcript.read_text().splitlines()[1])["stdout"] == "y" * 20_000


def test_an_adapter_that_is_not_found_fails_saying_so(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    pipeline = define_pipeline(
        name="missing",
        agents={"gone": {"command": ["no-such-agent-adapter-xyz", "-p"], "model": "m"}},
        tasks={"propose": task(agent(use="gone", prompt="go", stdout_to="o.txt"))},
        jobs={"j": job(target="propose")},
    )
    record = run_job(pipeline, id="j", cwd=root, env={"PATH": os.environ["PATH"]})
    result = record.tasks[0]
    assert result.exit_code == 127
    assert result.error is not None and result.error.code == "ASYNC_PIPELINE_AGENT_FAILED"
    assert "no-such-agent-adapter-xyz" in result.error.message
    assert "not found" in result.error.message


def test_the_pack_of_a_failed_agent_task_names_its_transcript(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    command = _agent(tmp_path, "print('half a proposal')\nsys.exit(3)\n")
    pipeline = define_pipeline(
        name="failing",
        agents={"a": {"command": command, "model": "m"}},
        tasks={
            "propose": task(agent(use="a", prompt="go", stdout_to="o.txt"), outputs=["o.txt"]),
            "plain": task(sh("exit 1")),
        },
        jobs={"j": job(target="propose"), "k": job(target="plain")},
    )
    record = run_job(pipeline, id="j", cwd=root, env={"PATH": os.environ["PATH"]})
    pack = _pack(root, record.id, "propose")
    assert pack["transcript"] == "agents/propose.jsonl"
    transcript = root / RUNS_DIR / record.id / pack["transcript"]
    assert "half a proposal" in transcript.read_text()
    other = run_job(pipeline, id="k", cwd=root, env={"PATH": os.environ["PATH"]})
    assert "transcript" not in _pack(root, other.id, "plain")


def test_reproduce_env_names_what_the_dependencies_and_agent_selection_read(
    tmp_path: Path,
) -> None:
    root = _repo(tmp_path)
    command = _agent(tmp_path, "print(os.environ['MODE'])\n")
    pipeline = define_pipeline(
        name="reproduce",
        agents={
            "mock": {"command": command, "model": "mock-1"},
            "live": {"command": command, "model": env.var("LIVE_MODEL", default="big")},
            "unused": {"command": command, "model": env.var("UNUSED_MODEL", default="x")},
        },
        env={"SHARED": env.var("SHARED_SETTING", default="s")},
        tasks={
            "propose": task(
                agent(
                    use=env.var("PICK_AGENT", {"m": "mock", "l": "live"}, default="m"),
                    prompt="go",
                    stdout_to="o.txt",
                ),
                outputs=["o.txt"],
                env={"MODE": env.var("MOCK_MODE", default="fix")},
                requires={"secrets": ["DEP_TOKEN"]},
            ),
            "unrelated": task(sh("true"), env={"OTHER": env.var("NOT_NEEDED", default="n")}),
            "verify": task(
                sh("grep -q good o.txt"),
                depends_on=["propose"],
                env={"LEVEL": env.var("VERIFY_LEVEL", default="1")},
            ),
        },
        jobs={"j": job(target="verify", env={"JOBVAR": env.var("JOB_SETTING", default="j")})},
    )
    record = run_job(
        pipeline,
        id="j",
        cwd=root,
        env={"PATH": os.environ["PATH"], "MOCK_MODE": "wrong", "DEP_TOKEN": "t0ken-value-1"},
    )
    assert [t.status for t in record.tasks] == ["passed", "failed"]
    names = _pack(root, record.id, "verify")["reproduce"]["env"]
    assert names == sorted(
        [
            "DEP_TOKEN",
            "JOB_SETTING",
            "LIVE_MODEL",
            "MOCK_MODE",
            "PICK_AGENT",
            "SHARED_SETTING",
            "VERIFY_LEVEL",
        ]
    )
