"""The command policy: what the tool may start on a user's behalf, and the in-process CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import agent, command, define_pipeline, env, job, run_pipeline_cli, task
from async_pipeline.runner import run_job
from async_pipeline.runner.policy import decide

POLICY = command.policy(
    rules=[
        command.rule(prefix=["npm", "publish"], action=command.deny()),
        command.rule(exact=["npm", "publish", "--dry-run"], action=command.allow()),
        command.rule(exact=["twine", "check"], action=command.mock(code=0, stdout="fine\n")),
        command.rule(prefix=["twine", "upload"], action=command.require_environment("release")),
    ],
)


@pytest.mark.parametrize(
    ("argv", "environment", "verdict", "rule"),
    [
        (["npm", "publish"], "", "deny", 0),
        (["npm", "publish", "--dry-run"], "", "deny", 0),  # the first match wins
        (["npm", "install"], "", "allow", None),
        (["twine", "check"], "", "mock", 2),
        (["twine", "check", "dist"], "", "allow", None),  # exact means exact
        (["twine", "upload", "dist/*"], "release", "allow", 3),
        (["twine", "upload", "dist/*"], "staging", "deny", 3),
        (["twine", "upload", "dist/*"], "", "deny", 3),
    ],
)
def test_rules_match_in_order_and_only_matching_commands(
    argv: list[str], environment: str, verdict: str, rule: int | None
) -> None:
    decision = decide(POLICY, argv, {"ASYNC_PIPELINE_ENVIRONMENT": environment})
    assert (decision.verdict, decision.rule) == (verdict, rule)
    if verdict == "deny":
        assert decision.code == "ASYNC_PIPELINE_COMMAND_DENIED"


def test_the_fallback_decides_unmatched_commands() -> None:
    strict = command.policy(rules=[], fallback=command.deny())
    assert decide(strict, ["anything"], {}).verdict == "deny"
    assert decide(None, ["anything"], {}).verdict == "allow"


CANARY_AGENT = """
import pathlib, sys
pathlib.Path(sys.argv[1]).write_text("spawned")
print("real agent output")
"""


def _agent_pipeline(tmp_path: Path, action: Any, **policy: Any) -> tuple[Any, Path]:
    tool = tmp_path / "canary_agent.py"
    tool.write_text(CANARY_AGENT)
    marker = tmp_path / "spawned.txt"
    pipeline = define_pipeline(
        name="p",
        agents={"a": {"command": [sys.executable, str(tool), str(marker)], "model": "m"}},
        commands=command.policy(
            rules=[command.rule(prefix=[sys.executable, str(tool)], action=action)], **policy
        ),
        env={"TOKEN": env.secret("TOKEN_SOURCE")},
        tasks={"t": task(agent(use="a", prompt="go", stdout_to="out.md"), outputs=["out.md"])},
        jobs={"j": job(target="t")},
    )
    return pipeline, marker


def _run(pipeline: Any, root: Path, **kw: Any) -> Any:
    root.mkdir(exist_ok=True)
    env_ = {"PATH": os.environ["PATH"], "TOKEN_SOURCE": "s3cret-token-value", **kw.pop("env", {})}
    return run_job(pipeline, id="j", cwd=root, env=env_, **kw)


def test_a_denied_adapter_is_never_spawned_and_the_decision_is_recorded(tmp_path: Path) -> None:
    pipeline, marker = _agent_pipeline(tmp_path, command.deny(), record=True)
    record = _run(pipeline, tmp_path / "repo")
    assert not marker.exists()
    error = record.tasks[0].error
    assert error is not None and error.code == "ASYNC_PIPELINE_COMMAND_DENIED"
    assert [(c.decision, c.rule, c.task) for c in record.commands] == [("deny", 0, "t")]


def test_a_mocked_adapter_answers_without_running(tmp_path: Path) -> None:
    mock = command.mock(code=0, stdout="mocked proposal s3cret-token-value\n")
    pipeline, marker = _agent_pipeline(
        tmp_path, mock, record=True, output={"max_bytes": 12, "redact_secrets": True}
    )
    record = _run(pipeline, tmp_path / "repo")
    assert record.status == "passed"
    assert not marker.exists()
    assert (tmp_path / "repo" / "out.md").read_text() == "mocked proposal s3cret-token-value\n"
    decision = record.commands[0]
    assert decision.decision == "mock"
    assert len(decision.stdout.encode()) <= 12 and "s3cret" not in decision.stdout


def test_allowed_adapters_run_and_nothing_is_recorded_unless_asked(tmp_path: Path) -> None:
    pipeline, marker = _agent_pipeline(tmp_path, command.allow())
    record = _run(pipeline, tmp_path / "repo")
    assert record.status == "passed" and marker.exists()
    assert record.commands == []


def test_require_environment_allows_only_the_named_environment(tmp_path: Path) -> None:
    pipeline, marker = _agent_pipeline(tmp_path, command.require_environment("prod"))
    denied = _run(pipeline, tmp_path / "repo", env={"ASYNC_PIPELINE_ENVIRONMENT": "dev"})
    assert denied.status == "failed" and not marker.exists()
    allowed = _run(pipeline, tmp_path / "repo", env={"ASYNC_PIPELINE_ENVIRONMENT": "prod"})
    assert allowed.status == "passed" and marker.exists()


CLI_PIPELINE = """
from async_pipeline import command, define_pipeline, env, job, sh, task

pipeline = define_pipeline(
    name="cli",
    commands=command.policy(rules=[
        command.rule(exact=["async-pipeline", "github", "check"],
                     action=command.mock(code=0, stdout="GitHub workflow is current.\\n")),
        command.rule(prefix=["async-pipeline", "gc"], action=command.deny()),
    ]),
    tasks={"hello": task(sh('printf "%s" "$GREETING" > greeting.txt'),
                         env={"GREETING": env.var("GREETING")})},
    jobs={"hello": job(target="hello")},
)
"""


def test_run_pipeline_cli_runs_in_process_with_its_own_cwd_and_env(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(CLI_PIPELINE)
    cwd_before, env_before = os.getcwd(), dict(os.environ)
    result = run_pipeline_cli(
        ["run", "hello", "--format", "json"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "GREETING": "only-in-the-given-env"},
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "passed"
    assert (tmp_path / "greeting.txt").read_text() == "only-in-the-given-env"
    assert os.getcwd() == cwd_before and dict(os.environ) == env_before
    listing = run_pipeline_cli(["list"], cwd=tmp_path)
    assert listing.exit_code == 0 and "hello" in listing.stdout


def test_run_pipeline_cli_applies_the_command_policy(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(CLI_PIPELINE)
    mocked = run_pipeline_cli(["github", "check"], cwd=tmp_path)
    assert (mocked.exit_code, mocked.stdout) == (0, "GitHub workflow is current.\n")
    denied = run_pipeline_cli(["gc"], cwd=tmp_path)
    assert denied.exit_code == 1 and "ASYNC_PIPELINE_COMMAND_DENIED" in denied.stderr
    missing = run_pipeline_cli(["run", "hello"], cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert missing.exit_code == 1 and "ASYNC_PIPELINE_ENV_MISSING" in missing.stderr


def _cached_agent(tmp_path: Path, policy: Any) -> Any:
    tool = tmp_path / "canary_agent.py"
    tool.write_text(CANARY_AGENT)
    return define_pipeline(
        name="p",
        agents={
            "a": {
                "command": [sys.executable, str(tool), str(tmp_path / "spawned.txt")],
                "model": "m",
            }
        },
        commands=policy,
        tasks={
            "t": task(
                agent(use="a", prompt="go", stdout_to="out.md"), outputs=["out.md"], cache=True
            )
        },
        jobs={"j": job(target="t")},
    )


def test_a_mocked_answer_is_never_cached_and_never_hides_the_mock(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    marker = tmp_path / "spawned.txt"
    tool_argv = [sys.executable, str(tmp_path / "canary_agent.py")]
    mocked = command.policy(
        rules=[command.rule(prefix=tool_argv, action=command.mock(code=0, stdout="MOCKED\n"))]
    )
    first = _run(_cached_agent(tmp_path, mocked), repo)
    assert first.status == "passed" and not marker.exists()
    assert first.warnings == ["cache: not used in this run: its command policy mocks commands"]
    assert (repo / "out.md").read_text() == "MOCKED\n"
    # Without the mock, the real agent answers: nothing of the mocked run was stored.
    real = _run(_cached_agent(tmp_path, None), repo)
    assert real.tasks[0].cache_hit is False and marker.exists()
    assert (repo / "out.md").read_text() == "real agent output\n"
    assert _run(_cached_agent(tmp_path, None), repo).tasks[0].cache_hit is True
    # With the mock again, the real cached answer does not stand in for it.
    again = _run(_cached_agent(tmp_path, mocked), repo)
    assert again.tasks[0].cache_hit is False
    assert (repo / "out.md").read_text() == "MOCKED\n"
