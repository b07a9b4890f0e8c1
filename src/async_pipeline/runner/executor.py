"""Command executors: where a task's shell commands run. The host executor is the default.

A command runs in its own process group (its own session), so a timeout, an interrupt or
the end of the task ends every process it started, not only the shell.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio
from anyio.abc import ByteReceiveStream, Process

from async_pipeline.runner import _spawn
from async_pipeline.runner._spawn import group_alive, signal_group
from async_pipeline.runner._spawn import group_members as group_members

if TYPE_CHECKING:
    from async_pipeline.core.model import Task

__all__ = [
    "TIMEOUT_EXIT_CODE",
    "CommandExecutor",
    "CommandResult",
    "HostExecutor",
    "OutputSink",
]

TIMEOUT_EXIT_CODE = 124
TERM_GRACE_SECONDS = 2.0
DRAIN_SECONDS = 0.5


class OutputSink(Protocol):
    """Receives a command's output as it arrives."""

    def stdout(self, chunk: bytes) -> None: ...

    def stderr(self, chunk: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_code: int
    timed_out: bool = False
    duration_ms: int = 0


@runtime_checkable
class CommandExecutor(Protocol):
    """Runs shell commands for tasks. Implement it to run tasks elsewhere (or to fake them)."""

    name: str

    async def run_shell(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        task: Task,
        timeout_ms: int | None,
        output: OutputSink,
    ) -> CommandResult: ...

    async def check_tool(self, tool: str, *, env: Mapping[str, str]) -> bool: ...


class HostExecutor:
    """Runs commands with ``/bin/sh -c`` on this machine.

    On asyncio with Linux pidfds, the event loop watches each command's pipes and exit
    itself (``_spawn``); elsewhere, or with ``portable=True``, commands run through
    ``anyio.open_process``, which works on every anyio backend. Both behave the same.
    """

    name = "host"

    def __init__(
        self,
        shell: str = "/bin/sh",
        term_grace_seconds: float = TERM_GRACE_SECONDS,
        *,
        portable: bool = False,
    ):
        self.shell = shell
        self.term_grace_seconds = term_grace_seconds
        self.portable = portable

    async def check_tool(self, tool: str, *, env: Mapping[str, str]) -> bool:
        return shutil.which(tool, path=env.get("PATH", os.defpath)) is not None

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
        started = time.monotonic()
        limit = None if timeout_ms is None else timeout_ms / 1000
        returncode: int | None
        loop = None if self.portable else _spawn.watching_loop()
        if loop is not None:
            returncode, timed_out = await _spawn.run_watched(
                loop,
                [self.shell, "-c", command],
                cwd=cwd,
                env=env,
                stdout=output.stdout,
                stderr=output.stderr,
                limit=limit,
                grace=self.term_grace_seconds,
                drain=DRAIN_SECONDS,
            )
        else:
            returncode, timed_out = await self._run_portable(command, cwd, env, limit, output)
        code = TIMEOUT_EXIT_CODE if timed_out else _exit_code(returncode)
        return CommandResult(code, timed_out, int((time.monotonic() - started) * 1000))

    async def _run_portable(
        self,
        command: str,
        cwd: Path,
        env: Mapping[str, str],
        limit: float | None,
        output: OutputSink,
    ) -> tuple[int | None, bool]:
        _prefer_pidfd_child_watcher()
        # Shielded: a cancellation landing mid-spawn would leave a started process group
        # that nothing here knows about. Once spawned, the cancellation is honoured below.
        with anyio.CancelScope(shield=True):
            process = await anyio.open_process(
                [self.shell, "-c", command],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        assert process.stdout is not None and process.stderr is not None
        timed_out = False
        try:
            async with anyio.create_task_group() as readers:
                out_done, err_done = anyio.Event(), anyio.Event()
                readers.start_soon(_pump, process.stdout, output.stdout, out_done)
                readers.start_soon(_pump, process.stderr, output.stderr, err_done)
                with anyio.move_on_after(limit) as scope:
                    await process.wait()
                if scope.cancelled_caught:
                    timed_out = True
                    await self._terminate(process)
                else:
                    # The shell is done. Whatever it left running in its group ends with the
                    # task; otherwise an inherited pipe would keep the task open forever.
                    signal_group(process.pid, signal.SIGTERM)
                with anyio.move_on_after(DRAIN_SECONDS):
                    await out_done.wait()
                    await err_done.wait()
                readers.cancel_scope.cancel()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._terminate(process)
            raise
        finally:
            signal_group(process.pid, signal.SIGKILL)
            with anyio.CancelScope(shield=True):
                await process.aclose()
        return process.returncode, timed_out

    async def _terminate(self, process: Process) -> None:
        """TERM the whole group, wait a grace period, then KILL what is left."""
        signal_group(process.pid, signal.SIGTERM)
        with anyio.move_on_after(self.term_grace_seconds):
            await process.wait()
            # A process group's end has no event to wait on; poll it within the grace period.
            while group_alive(process.pid):  # noqa: ASYNC110
                await anyio.sleep(0.02)
        signal_group(process.pid, signal.SIGKILL)
        await process.wait()


async def _pump(
    stream: ByteReceiveStream, sink: Callable[[bytes], None], done: anyio.Event
) -> None:
    try:
        async for chunk in stream:
            sink(chunk)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
        pass
    finally:
        done.set()


def _prefer_pidfd_child_watcher() -> None:
    """On Python 3.11, asyncio waits for each child with a thread of its own; a pidfd watcher
    waits in the event loop instead (3.12 chooses it by default). Starting one thread per
    command measured ~0.5 ms a task here. Only the untouched default is replaced, and the
    watcher follows whichever loop is running (each ``anyio.run`` makes a new one)."""
    if sys.version_info >= (3, 12) or not _spawn.pidfd_supported():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another anyio backend: it watches its children itself
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        policy = asyncio.get_event_loop_policy()
        watcher = policy.get_child_watcher()
        if type(watcher) is asyncio.ThreadedChildWatcher:
            watcher = asyncio.PidfdChildWatcher()
            policy.set_child_watcher(watcher)
        if isinstance(watcher, asyncio.PidfdChildWatcher) and not watcher.is_active():
            watcher.attach_loop(loop)


def _exit_code(returncode: int | None) -> int:
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode
