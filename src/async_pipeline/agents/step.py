"""Running one agent step: prompt file, adapter or API call, transcript, stdout artifact.

The resolved prompt is written to ``.async/runs/<run-id>/agents/<task>.prompt.txt`` and
delivered on stdin; a CLI adapter runs through the task's command executor from the
task's directory with ``ASYNC_PIPELINE_AGENT_PROFILE``, ``ASYNC_PIPELINE_AGENT_MODEL`` and
``ASYNC_PIPELINE_AGENT_PROMPT_FILE`` set. The request and response go to
``<task>.jsonl`` beside it, redacted and capped like task logs (``agents.transcript``). With
``stdout_to`` the agent's stdout lands as a file only after the step succeeds, written
atomically, never outside the task's directory (``agents.artifact``, checked again when it is
written, since the agent may have changed the directory): the agent proposes, and the
deterministic tasks that depend on it decide.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from async_pipeline.agents.adapter import NOT_FOUND_EXIT_CODE, find_adapter
from async_pipeline.agents.artifact import LandingError, check_destination, land
from async_pipeline.agents.backends import AgentBackendError, backend_for
from async_pipeline.agents.resolve import ResolvedAgent
from async_pipeline.agents.transcript import Transcript
from async_pipeline.core.commands import CommandPolicy
from async_pipeline.core.model import Task
from async_pipeline.core.steps import AgentStep
from async_pipeline.errors import PipelineError
from async_pipeline.redaction import Redactor
from async_pipeline.runner.executor import CommandExecutor, OutputSink
from async_pipeline.runner.policy import Decision, decide, decision_record
from async_pipeline.runner.records import DEFAULT_MAX_LOG_BYTES
from async_pipeline.runner.records import max_log_bytes as max_log_bytes_setting

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


def _invalid_path(message: str) -> dict[str, str]:
    return {"code": "ASYNC_PIPELINE_INVALID_PATH", "message": message}


def _transcript_cap(env: Mapping[str, str]) -> int:
    try:
        return max_log_bytes_setting(env)
    except PipelineError:  # the run checked the caller's value; a task's own may be bad
        return DEFAULT_MAX_LOG_BYTES


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
    max_log_bytes: int | None = None,
) -> AgentOutcome:
    """Run one agent step; a failure (of the agent, or to land its stdout) is the outcome's
    ``error``, never an exception. ``max_log_bytes`` caps each text in the transcript
    (default: ``ASYNC_PIPELINE_MAX_LOG_BYTES`` from ``env``)."""
    if step.stdout_to is not None:
        # Refused before the agent is paid for; checked again when the file is written.
        try:
            check_destination(cwd, step.stdout_to)
        except LandingError as exc:
            return AgentOutcome(None, _invalid_path(exc.message))
    agents_dir = run_dir / "agents"
    agents_dir.mkdir(parents=True, exist_ok=True)
    prompt_file = agents_dir / f"{task.id}.prompt.txt"
    prompt_file.write_text(step.prompt, encoding="utf-8")
    cap = _transcript_cap(env) if max_log_bytes is None else max_log_bytes
    record = Transcript(agents_dir / f"{task.id}.jsonl", redactor, cap).record
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
    duration_ms = int((time.monotonic() - started) * 1000)
    landed = outcome
    if outcome.error is None and step.stdout_to is not None:
        try:
            land(cwd, step.stdout_to, stdout)
        except LandingError as exc:
            landed = AgentOutcome(None, _invalid_path(exc.message))
    record(
        {
            "type": "response",
            "at": _now(),
            "durationMs": duration_ms,
            "exitCode": outcome.exit_code,
            "error": landed.error,
            "stdout": stdout.decode("utf-8", errors="replace"),
            **({"response": response} if response else {}),
        }
    )
    return landed


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
    if result.exit_code == NOT_FOUND_EXIT_CODE and resolved.profile.command:
        program = resolved.profile.command[0]
        if find_adapter(program, cwd=cwd, env=env) is None:
            message = (
                f"agent {resolved.profile_id} ({resolved.model}): its adapter command "
                f"{program!r} was not found (exit {NOT_FOUND_EXIT_CODE}); install it, put it "
                f"on PATH, or fix agents.{resolved.profile_id}.command"
            )
            error = {"code": "ASYNC_PIPELINE_AGENT_FAILED", "message": message}
            return AgentOutcome(result.exit_code, error), stdout, {}
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
