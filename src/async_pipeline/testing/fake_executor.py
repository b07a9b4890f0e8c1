"""A scripted ``CommandExecutor`` for tests: runs nothing, records every call."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from async_pipeline.runner.executor import TIMEOUT_EXIT_CODE, CommandResult, OutputSink

if TYPE_CHECKING:
    from async_pipeline.core.model import Task

__all__ = ["FakeCall", "FakeCommand", "FakeExecutor"]


@dataclass(frozen=True)
class FakeCommand:
    """How the fake answers one command: exit code, output, and how long it 'runs'."""

    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    seconds: float = 0.0


@dataclass(frozen=True)
class FakeCall:
    command: str
    cwd: Path
    env: Mapping[str, str]
    task_id: str
    timeout_ms: int | None


@dataclass
class FakeExecutor:
    """Answers commands from ``commands`` (exact text), else with ``default``.

    ``tools`` lists the tools ``check_tool`` finds (None: every tool). ``calls`` records
    each command in the order it started; ``max_running`` is the peak concurrency seen.
    """

    commands: Mapping[str, FakeCommand | int] = field(default_factory=dict)
    default: FakeCommand = field(default_factory=FakeCommand)
    tools: Iterable[str] | None = None
    name: str = "fake"
    calls: list[FakeCall] = field(default_factory=list)
    running: int = 0
    max_running: int = 0

    async def check_tool(self, tool: str, *, env: Mapping[str, str]) -> bool:
        return self.tools is None or tool in set(self.tools)

    async def run_shell(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        task: Task,
        timeout_ms: int | None,
        output: OutputSink,
    ) -> CommandResult:
        self.calls.append(FakeCall(command, cwd, dict(env), task.id, timeout_ms))
        scripted = self.commands.get(command, self.default)
        answer = FakeCommand(scripted) if isinstance(scripted, int) else scripted
        started = time.monotonic()
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if answer.stdout:
                output.stdout(answer.stdout)
            if answer.stderr:
                output.stderr(answer.stderr)
            limit = None if timeout_ms is None else timeout_ms / 1000
            with anyio.move_on_after(limit) as scope:
                await anyio.sleep(answer.seconds)
        finally:
            self.running -= 1
        elapsed = int((time.monotonic() - started) * 1000)
        if scope.cancelled_caught:
            return CommandResult(TIMEOUT_EXIT_CODE, True, elapsed)
        return CommandResult(answer.exit_code, False, elapsed)
