"""Running one agent step: prompt file, adapter or API call, transcript, stdout artifact.

The resolved prompt is written to ``.async/runs/<run-id>/agents/<task>.prompt.txt`` and
delivered on stdin; a CLI adapter runs through the task's command executor from the
task's directory with ``ASYNC_PIPELINE_AGENT_PROFILE``, ``ASYNC_PIPELINE_AGENT_MODEL`` and
``ASYNC_PIPELINE_AGENT_PROMPT_FILE`` set. The request and response go to
``<task>.jsonl`` beside it, redacted. With ``stdout_to`` the agent's stdout lands as a file
only after the step succeeds, written atomically, never outside the task's directory: the
agent proposes, and the deterministic tasks that depend on it decide.
"""

from __future__ import annotations

import os
import secrets
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.agents.backends import AgentBackendError, backend_for
from async_pipeline.agents.resolve import ResolvedAgent
from async_pipeline.core.commands import CommandPolicy
from async_pipeline.core.model import Task
from async_pipeline.core.steps import AgentStep
from async_pipeline.redaction import Redactor
from async_pipeline.runner._files import resolves_inside
from async_pipeline.runner.executor import CommandExecutor, OutputSink
from async_pipeline.runner.policy import Decision, decide, decision_record

__all__ = ["MAX_AGENT_STDOUT", "AgentOutcome", "run_agent_step"]

MAX_AGENT_STDOUT = 64 * 1024 * 1024


@dataclass(frozen=True)
class AgentOutcome:
    exit_code: int | None
    error: dict[str, str] | None = None
    timed_out: bool = False


class _Tee:
    """Keeps the agent's raw stdout (for the artifact) while the task log gets it too."""

    def __init__(self, output: OutputSink) -> None:
        self.output = output
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflow = False

    def stdout(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= MAX_AGENT_STDOUT:
            self.chunks.append(chunk)
        else:
            self.overflow = True
        self.output.stdout(chunk)

    def stderr(self, chunk: bytes) -> None:
        self.output.stderr(chunk)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _land(destination: Path, data: bytes) -> None:
    temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.agent")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, destination)  # replaces a symlink itself, never its target
    finally:
        temporary.unlink(missing_ok=True)


async def run_agent_step(
    step: AgentStep,
    *,
    task: Task,
    resolved: ResolvedAgent,
    run_dir: Path,
    cwd: Path,
    env: Mapping[str, str],
    executor: CommandExecutor,
    output: OutputSink,
    redactor: Redactor,
    timeout_ms: int | None,
    policy: CommandPolicy | None = None,
    on_decision: Callable[[dict[str, Any]], None] | None = None,
) -> AgentOutcome:
    agents_dir = run_dir / "agents"
    agents_dir.mkdir(parents=True, exist_ok=True)
    prompt_file = agents_dir / f"{task.id}.prompt.txt"
    prompt_file.write_text(step.prompt, encoding="utf-8")
    transcript = agents_dir / f"{task.id}.jsonl"

    def record(entry: dict[str, Any]) -> None:
        with open(transcript, "ab") as handle:
            handle.write(orjson.dumps(redactor.redact_json(entry)) + b"\n")

    destination: Path | None = None
    if step.stdout_to is not None:
        destination = cwd / step.stdout_to
        if not resolves_inside(destination.parent, cwd):
            return AgentOutcome(
                None,
                {
                    "code": "ASYNC_PIPELINE_INVALID_PATH",
                    "message": f"stdout_to {step.stdout_to!r} leads out of the task's directory",
                },
            )
    backend = resolved.profile.api or "cli"
    record(
        {
            "type": "request",
            "at": _now(),
            "profile": resolved.profile_id,
            "model": resolved.model,
            "backend": backend,
            "command": list(resolved.profile.command),
            "promptFile": str(prompt_file.relative_to(run_dir)),
            "prompt": step.prompt,
        }
    )
    started = time.monotonic()
    if resolved.profile.api is None:
        decision = decide(policy, resolved.profile.command, env)
        if decision.verdict == "allow":
            outcome, stdout, response = await _run_cli(
                resolved, prompt_file, cwd, env, task, executor, output, timeout_ms
            )
        else:
            outcome, stdout, response = _not_spawned(decision, resolved, output)
        if policy is not None and policy.record and on_decision is not None:
            on_decision(
                decision_record(
                    decision,
                    policy,
                    redactor,
                    task=task.id,
                    stdout=stdout,
                    exit_code=outcome.exit_code,
                )
            )
    else:
        outcome, stdout, response = await _run_api(step, resolved, env, output, timeout_ms)
    record(
        {
            "type": "response",
            "at": _now(),
            "durationMs": int((time.monotonic() - started) * 1000),
            "exitCode": outcome.exit_code,
            "error": outcome.error,
            "stdout": stdout.decode("utf-8", errors="replace"),
            **({"response": response} if response else {}),
        }
    )
    if outcome.error is None and destination is not None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        _land(destination, stdout)
    return outcome


def _not_spawned(
    decision: Decision, resolved: ResolvedAgent, output: OutputSink
) -> tuple[AgentOutcome, bytes, dict[str, Any]]:
    """A denied adapter is never started; a mocked one answers with the rule's result."""
    if decision.mock is None:
        error = {
            "code": decision.code or "ASYNC_PIPELINE_COMMAND_DENIED",
            "message": decision.message or "",
        }
        return AgentOutcome(None, error), b"", {}
    stdout, stderr = decision.mock.stdout.encode(), decision.mock.stderr.encode()
    output.stdout(stdout)
    output.stderr(stderr)
    if decision.mock.code != 0:
        return (
            AgentOutcome(decision.mock.code, _error(str(decision.mock.code), resolved)),
            stdout,
            {},
        )
    return AgentOutcome(0), stdout, {}


async def _run_cli(
    resolved: ResolvedAgent,
    prompt_file: Path,
    cwd: Path,
    env: Mapping[str, str],
    task: Task,
    executor: CommandExecutor,
    output: OutputSink,
    timeout_ms: int | None,
) -> tuple[AgentOutcome, bytes, dict[str, Any]]:
    command = f"{shlex.join(resolved.profile.command)} < {shlex.quote(str(prompt_file))}"
    agent_env = {
        **env,
        "ASYNC_PIPELINE_AGENT_PROFILE": resolved.profile_id,
        "ASYNC_PIPELINE_AGENT_MODEL": resolved.model,
        "ASYNC_PIPELINE_AGENT_PROMPT_FILE": str(prompt_file),
    }
    tee = _Tee(output)
    result = await executor.run_shell(
        command, cwd=cwd, env=agent_env, task=task, timeout_ms=timeout_ms, output=tee
    )
    stdout = b"".join(tee.chunks)
    if result.timed_out:
        return AgentOutcome(result.exit_code, _error("timeout", resolved), True), stdout, {}
    if result.exit_code != 0:
        return AgentOutcome(result.exit_code, _error(str(result.exit_code), resolved)), stdout, {}
    if tee.overflow:
        message = f"agent {resolved.profile_id} wrote more than {MAX_AGENT_STDOUT} bytes"
        return AgentOutcome(1, {"code": "ASYNC_PIPELINE_AGENT_FAILED", "message": message}), b"", {}
    return AgentOutcome(0), stdout, {}


def _error(how: str, resolved: ResolvedAgent) -> dict[str, str]:
    if how == "timeout":
        return {
            "code": "ASYNC_PIPELINE_TASK_TIMEOUT",
            "message": f"agent {resolved.profile_id} timed out",
        }
    return {
        "code": "ASYNC_PIPELINE_AGENT_FAILED",
        "message": f"agent {resolved.profile_id} ({resolved.model}) exited with {how}",
    }


async def _run_api(
    step: AgentStep,
    resolved: ResolvedAgent,
    env: Mapping[str, str],
    output: OutputSink,
    timeout_ms: int | None,
) -> tuple[AgentOutcome, bytes, dict[str, Any]]:
    assert resolved.profile.api is not None
    try:
        backend = backend_for(resolved.profile.api)
        reply = await backend.complete(
            prompt=step.prompt,
            model=resolved.model,
            profile=resolved.profile,
            env=env,
            timeout_ms=timeout_ms,
        )
    except AgentBackendError as exc:
        timed_out = exc.code == "ASYNC_PIPELINE_TASK_TIMEOUT"
        outcome = AgentOutcome(
            124 if timed_out else 1, {"code": exc.code, "message": exc.message}, timed_out
        )
        return outcome, b"", exc.response
    text = reply.text.encode()
    output.stdout(text)
    return AgentOutcome(0), text, {"request": dict(reply.request), "response": dict(reply.response)}
