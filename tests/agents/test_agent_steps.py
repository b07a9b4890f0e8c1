"""Agent steps with a CLI adapter: prompt on stdin, transcript, propose-only artifact, caching."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from async_pipeline import agent, define_pipeline, env, job, sh, task
from async_pipeline.runner import run_job
from async_pipeline.runner.records import RUNS_DIR
from async_pipeline.testing import new_canary, scan_for_canary

MOCK_AGENT = """
import os, sys
prompt = sys.stdin.read()
with open(os.environ["CALLS_FILE"], "a") as calls:
    calls.write(os.environ["ASYNC_PIPELINE_AGENT_PROFILE"] + "\\n")
if "FAIL" in prompt:
    print("cannot do that", file=sys.stderr)
    sys.exit(3)
print("# Proposal")
print("prompt:", prompt.strip())
print("model:", os.environ["ASYNC_PIPELINE_AGENT_MODEL"])
print("prompt file exists:", os.path.exists(os.environ["ASYNC_PIPELINE_AGENT_PROMPT_FILE"]))
if os.environ.get("LEAK"):
    print("leaking", os.environ["LEAK"])
"""


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "repo"
    tools = tmp_path / "tools"
    root.mkdir()
    tools.mkdir()
    (tools / "mock_agent.py").write_text(MOCK_AGENT)
    (root / "notes.txt").write_text("input v1\n")
    return root, tools, tmp_path / "calls.txt"


def _pipeline(
    tools: Path,
    *,
    prompt: str = "Summarize notes.txt",
    model: str = "mock-1",
    use: Any = "mock",
    script: str = "mock_agent.py",
    **task_kw: Any,
) -> Any:
    return define_pipeline(
        name="agents",
        agents={
            "mock": {"command": [sys.executable, str(tools / script)], "model": model},
            "other": {"command": [sys.executable, str(tools / script)], "model": model},
        },
        tasks={
            "propose": task(
                agent(use=use, prompt=prompt, stdout_to="proposals/summary.md"),
                inputs=["notes.txt"],
                outputs=["proposals/summary.md"],
                cache=True,
                **task_kw,
            ),
            "verify": task(sh("grep -q '# Proposal' proposals/summary.md"), depends_on=["propose"]),
        },
        jobs={"propose": job(target="verify")},
    )


def _run(pipeline: Any, root: Path, calls: Path, **kw: Any) -> Any:
    extra = kw.pop("env", {})
    return run_job(
        pipeline,
        id="propose",
        cwd=root,
        env={"PATH": os.environ["PATH"], "CALLS_FILE": str(calls), **extra},
        **kw,
    )


def _calls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_the_prompt_goes_to_stdin_and_stdout_lands_as_the_artifact(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    record = _run(_pipeline(tools), root, calls)
    assert record.status == "passed", record.tasks[0].error
    summary = (root / "proposals" / "summary.md").read_text()
    assert "prompt: Summarize notes.txt" in summary
    assert "model: mock-1" in summary and "prompt file exists: True" in summary
    agents_dir = root / RUNS_DIR / record.id / "agents"
    assert (agents_dir / "propose.prompt.txt").read_text() == "Summarize notes.txt"
    lines = [json.loads(line) for line in (agents_dir / "propose.jsonl").read_text().splitlines()]
    assert [line["type"] for line in lines] == ["request", "response"]
    assert lines[0]["profile"] == "mock" and lines[0]["model"] == "mock-1"
    assert lines[1]["exitCode"] == 0 and lines[1]["stdout"] == summary


def test_a_failed_agent_writes_no_artifact(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    record = _run(_pipeline(tools, prompt="FAIL please"), root, calls)
    assert record.status == "failed"
    error = record.tasks[0].error
    assert error is not None and error.code == "ASYNC_PIPELINE_AGENT_FAILED"
    assert not (root / "proposals" / "summary.md").exists()


def test_transcripts_and_logs_are_redacted(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    canary = new_canary("agent", awkward=False)
    pipeline = define_pipeline(
        name="agents",
        agents={"mock": {"command": [sys.executable, str(tools / "mock_agent.py")], "model": "m"}},
        env={"LEAK": env.secret("SECRET_SOURCE")},
        tasks={"propose": task(agent(use="mock", prompt="hello"))},
        jobs={"propose": job(target="propose")},
    )
    record = _run(pipeline, root, calls, env={"SECRET_SOURCE": canary})
    assert record.status == "passed"
    assert scan_for_canary(canary, trees=[root / ".async"]) == []


def test_moving_the_binary_keeps_the_hit_and_no_adapter_runs(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    first = _run(_pipeline(tools), root, calls)
    assert _calls(calls) == 1
    shutil.copy(tools / "mock_agent.py", tools / "moved_agent.py")
    (root / "proposals" / "summary.md").unlink()
    second = _run(_pipeline(tools, script="moved_agent.py"), root, calls)
    assert second.tasks[0].cache_hit is True
    assert second.tasks[0].cache_key == first.tasks[0].cache_key
    assert _calls(calls) == 1
    assert "# Proposal" in (root / "proposals" / "summary.md").read_text()


def test_another_profile_model_prompt_or_input_misses(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    base = _run(_pipeline(tools), root, calls).tasks[0].cache_key
    variants = {
        "profile": _pipeline(tools, use="other"),
        "model": _pipeline(tools, model="mock-2"),
        "prompt": _pipeline(tools, prompt="Summarize differently"),
    }
    for name, pipeline in variants.items():
        assert _run(pipeline, root, calls).tasks[0].cache_key != base, name
    (root / "notes.txt").write_text("input v2\n")
    assert _run(_pipeline(tools), root, calls).tasks[0].cache_key != base


def test_force_samples_afresh(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    _run(_pipeline(tools), root, calls)
    record = _run(_pipeline(tools), root, calls, force=True)
    assert record.tasks[0].cache_hit is False
    assert _calls(calls) == 2


def test_use_resolves_from_the_task_env_at_run_time(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    pipeline = _pipeline(tools, use=env.var("ASYNC_AGENT", default="mock"))
    assert _run(pipeline, root, calls, env={"ASYNC_AGENT": "other"}).status == "passed"
    assert calls.read_text().splitlines() == ["other"]
    record = _run(pipeline, root, calls, env={"ASYNC_AGENT": "nobody"})
    error = record.tasks[0].error
    assert error is not None and error.code == "ASYNC_PIPELINE_AGENT_UNKNOWN"


def test_stdout_to_through_a_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "proposals").symlink_to(outside)
    record = _run(_pipeline(tools), root, calls)
    error = record.tasks[0].error
    assert error is not None and error.code == "ASYNC_PIPELINE_INVALID_PATH"
    assert list(outside.iterdir()) == []


def test_a_slow_agent_times_out(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    (tools / "slow_agent.py").write_text("import time\ntime.sleep(30)\n")
    record = _run(_pipeline(tools, script="slow_agent.py", timeout="300ms"), root, calls)
    result = record.tasks[0]
    assert result.exit_code == 124
    assert result.error is not None and result.error.code == "ASYNC_PIPELINE_TASK_TIMEOUT"


def test_an_api_key_left_undeclared_in_the_environment_is_still_masked(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    canary = new_canary("apikey", awkward=False)
    pipeline = define_pipeline(
        name="agents",
        agents={
            "api": {"api": "anthropic", "model": "m"},
            "mock": {"command": [sys.executable, str(tools / "mock_agent.py")], "model": "m"},
        },
        tasks={"t": task(sh('echo "key is $ANTHROPIC_API_KEY"'))},
        jobs={"propose": job(target="t")},
    )
    record = _run(pipeline, root, calls, env={"ANTHROPIC_API_KEY": canary})
    assert record.status == "passed"
    assert scan_for_canary(canary, trees=[root / ".async"]) == []


def test_retries_apply_to_agent_steps(tmp_path: Path) -> None:
    root, tools, calls = _setup(tmp_path)
    record = _run(_pipeline(tools, prompt="FAIL again", retry=3), root, calls)
    assert record.tasks[0].attempts == 3
    assert _calls(calls) == 3
