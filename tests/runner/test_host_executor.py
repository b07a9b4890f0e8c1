"""The host executor runs real processes and ends their whole process tree.

Every behaviour holds on both of its paths: commands watched by the asyncio loop itself
(the default here) and the portable anyio path (``portable=True``, used on other backends).
"""

from __future__ import annotations

import os
import signal as signals
from pathlib import Path

import anyio
import pytest

from async_pipeline import define_pipeline, job, sh, task
from async_pipeline.runner import HostExecutor, run_job
from async_pipeline.runner.executor import group_members
from tests.runner._procs import live_processes_with, marker_seconds

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[False, True], ids=["loop", "portable"])
def portable(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


class Sink:
    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()

    def stdout(self, chunk: bytes) -> None:
        self.out += chunk

    def stderr(self, chunk: bytes) -> None:
        self.err += chunk


async def _run(
    command: str,
    tmp_path: Path,
    timeout_ms: int | None = None,
    grace: float = 0.5,
    *,
    portable: bool,
) -> tuple[int, bool, Sink]:
    sink = Sink()
    executor = HostExecutor(term_grace_seconds=grace, portable=portable)
    result = await executor.run_shell(
        command,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        task=None,  # type: ignore[arg-type]
        timeout_ms=timeout_ms,
        output=sink,
    )
    return result.exit_code, result.timed_out, sink


async def test_output_and_exit_code_are_delivered(tmp_path: Path, portable: bool) -> None:
    code, timed_out, sink = await _run(
        "echo out; echo err >&2; exit 7", tmp_path, portable=portable
    )
    assert (code, timed_out) == (7, False)
    assert bytes(sink.out) == b"out\n" and bytes(sink.err) == b"err\n"


async def test_binary_and_invalid_utf8_output_pass_through(tmp_path: Path, portable: bool) -> None:
    code, _, sink = await _run("printf '\\377\\376\\000abc\\200'", tmp_path, portable=portable)
    assert code == 0
    assert bytes(sink.out) == b"\xff\xfe\x00abc\x80"


async def test_a_timeout_ends_background_children_too(tmp_path: Path, portable: bool) -> None:
    seconds = marker_seconds()
    with anyio.fail_after(20):
        code, timed_out, _ = await _run(
            f"sleep {seconds} & sleep {seconds} & wait", tmp_path, 300, portable=portable
        )
    assert (code, timed_out) == (124, True)
    assert live_processes_with(seconds) == []


async def test_a_timeout_kills_a_process_that_ignores_term(tmp_path: Path, portable: bool) -> None:
    seconds = marker_seconds()
    with anyio.fail_after(20):
        code, timed_out, _ = await _run(
            f"trap '' TERM; sleep {seconds}", tmp_path, 200, grace=0.3, portable=portable
        )
    assert (code, timed_out) == (124, True)
    assert live_processes_with(seconds) == []


async def test_processes_left_behind_by_a_finished_command_are_ended(
    tmp_path: Path, portable: bool
) -> None:
    seconds = marker_seconds()
    with anyio.fail_after(20):
        code, timed_out, _ = await _run(
            f"sleep {seconds} & echo started", tmp_path, portable=portable
        )
    assert (code, timed_out) == (0, False)
    assert live_processes_with(seconds) == []


async def test_cancelling_a_command_ends_its_process_group(tmp_path: Path, portable: bool) -> None:
    seconds = marker_seconds()
    with anyio.move_on_after(0.5):
        await _run(f"sleep {seconds} & sleep {seconds}", tmp_path, portable=portable)
    assert live_processes_with(seconds) == []


@pytest.mark.parametrize("signal", ["TERM", "KILL", "HUP"])
async def test_a_signal_death_maps_to_128_plus_the_signal(
    tmp_path: Path, portable: bool, signal: str
) -> None:
    code, _, _ = await _run(f"kill -{signal} $$", tmp_path, portable=portable)
    assert code == 128 + int(getattr(signals.Signals, f"SIG{signal}"))


async def test_check_tool_uses_the_task_path(tmp_path: Path) -> None:
    executor = HostExecutor()
    assert await executor.check_tool("sh", env={"PATH": "/bin:/usr/bin"})
    assert not await executor.check_tool("sh", env={"PATH": str(tmp_path)})


def test_group_members_ignores_unknown_groups() -> None:
    assert group_members(2**22 + 12345) == []


def test_a_timed_out_task_in_a_run_leaves_no_process_and_fails_with_124(tmp_path: Path) -> None:
    seconds = marker_seconds()
    pipeline = define_pipeline(
        name="p",
        tasks={"t": task(sh(f"sleep {seconds} & sleep {seconds} & wait"), timeout="300ms")},
        jobs={"all": job(target="t")},
    )
    record = run_job(pipeline, id="all", cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert record.status == "failed"
    assert record.tasks[0].exit_code == 124
    assert live_processes_with(seconds) == []
