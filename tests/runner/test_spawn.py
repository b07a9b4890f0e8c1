"""Commands watched from the event loop: complete output, an exact child setup, and nothing
left behind (no fd, no zombie, no process) on any path out. Each behaviour is checked on
the loop-watched path and on the portable anyio path it must match."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from async_pipeline.runner import HostExecutor, _spawn
from tests.runner._procs import live_processes_with, marker_seconds

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[False, True], ids=["loop", "portable"])
def portable(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


class Sink:
    """Collects output; optionally cancels a scope, or raises, at every chunk."""

    def __init__(
        self, cancel: anyio.CancelScope | None = None, fail: Exception | None = None
    ) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.cancel = cancel
        self.fail = fail

    def stdout(self, chunk: bytes) -> None:
        self._first(chunk)
        self.out += chunk

    def stderr(self, chunk: bytes) -> None:
        self._first(chunk)
        self.err += chunk

    def _first(self, chunk: bytes) -> None:
        assert chunk, "an empty chunk was delivered"
        if self.cancel is not None:
            self.cancel.cancel()
        if self.fail is not None:
            raise self.fail


async def _run(
    command: str,
    cwd: Path,
    *,
    portable: bool,
    sink: Sink | None = None,
    timeout_ms: int | None = None,
    env: dict[str, str] | None = None,
) -> tuple[int, bool, Sink]:
    sink = sink or Sink()
    result = await HostExecutor(term_grace_seconds=0.3, portable=portable).run_shell(
        command,
        cwd=cwd,
        env=env if env is not None else {"PATH": os.environ["PATH"]},
        task=None,  # type: ignore[arg-type]
        timeout_ms=timeout_ms,
        output=sink,
    )
    return result.exit_code, result.timed_out, sink


def _open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def _children() -> set[int]:
    """Pids whose parent is this process, zombies included (they await reaping)."""
    me = os.getpid()
    return {pid for pid, fields in _spawn.proc_stats() if int(fields[1]) == me}


async def test_large_output_arrives_complete_and_in_order(tmp_path: Path, portable: bool) -> None:
    code, _, sink = await _run(
        "seq 1 200000; seq 1 100000 >&2; seq 200001 300000", tmp_path, portable=portable
    )
    assert code == 0
    expected_out = "".join(f"{n}\n" for n in range(1, 300001)).encode()
    assert len(expected_out) > 64 * 1024 * 20
    assert bytes(sink.out) == expected_out
    assert bytes(sink.err) == "".join(f"{n}\n" for n in range(1, 100001)).encode()


async def test_every_byte_value_passes_through_in_large_output(
    tmp_path: Path, portable: bool
) -> None:
    payload = bytes(range(256)) * 1000 + b"\x00\xff"
    (tmp_path / "blob").write_bytes(payload)
    code, _, sink = await _run("cat blob; cat blob >&2", tmp_path, portable=portable)
    assert code == 0
    assert bytes(sink.out) == payload and bytes(sink.err) == payload


async def test_output_is_delivered_while_the_command_still_runs(
    tmp_path: Path, portable: bool
) -> None:
    seconds = marker_seconds()
    with anyio.fail_after(20), anyio.CancelScope() as scope:
        sink = Sink(cancel=scope)
        await _run(f"echo first; sleep {seconds}", tmp_path, portable=portable, sink=sink)
        pytest.fail("run_shell returned although it was cancelled")
    assert scope.cancelled_caught
    assert bytes(sink.out) == b"first\n"
    assert live_processes_with(seconds) == []


async def test_cancelling_mid_output_ends_the_group_and_reraises(
    tmp_path: Path, portable: bool
) -> None:
    seconds = marker_seconds()
    command = f"sleep {seconds} & while :; do echo line; echo err >&2; done"
    with anyio.fail_after(20), anyio.CancelScope() as scope:
        await _run(command, tmp_path, portable=portable, sink=Sink(cancel=scope))
        pytest.fail("run_shell returned although it was cancelled")
    assert scope.cancelled_caught
    assert live_processes_with(seconds) == []


@pytest.mark.parametrize("how", ["cancelled", "timed out"])
async def test_a_stopped_command_gets_term_and_a_grace_period_to_clean_up(
    tmp_path: Path, portable: bool, how: str
) -> None:
    # A trapped TERM interrupts `wait` at once (TERM may miss a child not yet exec'ed).
    command = "trap 'echo cleaned > cleaned; exit 1' TERM; echo ready; sleep 30 & wait"
    with anyio.fail_after(20), anyio.CancelScope() as scope:
        if how == "cancelled":
            await _run(command, tmp_path, portable=portable, sink=Sink(cancel=scope))
        else:
            _, timed_out, _ = await _run(command, tmp_path, portable=portable, timeout_ms=300)
            assert timed_out
    assert scope.cancelled_caught == (how == "cancelled")
    assert (tmp_path / "cleaned").read_text() == "cleaned\n"


async def test_a_background_child_that_ignores_term_cannot_hold_the_command_open(
    tmp_path: Path, portable: bool
) -> None:
    seconds = marker_seconds()
    # The fifo makes the shell exit only once its child ignores TERM.
    command = (
        f"mkfifo armed; (trap '' TERM; echo > armed; exec sleep {seconds}) & "
        "read x < armed; echo started"
    )
    with anyio.fail_after(20):
        code, timed_out, sink = await _run(command, tmp_path, portable=portable)
    assert (code, timed_out, bytes(sink.out)) == (0, False, b"started\n")
    assert await _still_running_after_dying(seconds) == []


async def _still_running_after_dying(marker: str) -> list[int]:
    """Processes with ``marker`` that are still running once any being killed has died.

    A KILLed process that is not a child of ours takes a moment to go and nothing here
    waits for it; its pidfd turns readable when it has.
    """
    for pid in live_processes_with(marker):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            with anyio.move_on_after(5):
                await anyio.wait_readable(pidfd)
        finally:
            os.close(pidfd)
    return live_processes_with(marker)


# The shell exits once its child has set a trap; the child writes only when TERMed.
_LATE_WRITER = (
    "mkfifo armed; (trap 'echo late; exit 0' TERM; echo > armed; "
    "while :; do sleep 0.01; done) & read x < armed"
)


async def test_output_a_background_child_writes_while_draining_is_kept(
    tmp_path: Path, portable: bool
) -> None:
    with anyio.fail_after(20):
        code, _, sink = await _run(f"{_LATE_WRITER}; echo early", tmp_path, portable=portable)
    assert code == 0
    assert bytes(sink.out) == b"early\nlate\n"


async def test_a_sink_that_raises_ends_the_command_and_its_error_propagates(
    tmp_path: Path, portable: bool
) -> None:
    seconds = marker_seconds()
    failure = RuntimeError("sink broke")
    with anyio.fail_after(20), pytest.raises(Exception) as raised:
        await _run(
            f"sleep {seconds} & echo out; wait",
            tmp_path,
            portable=portable,
            sink=Sink(fail=failure),
        )
    assert failure in _leaves(raised.value)
    assert live_processes_with(seconds) == []


async def test_a_sink_failing_on_output_written_while_draining_still_propagates(
    tmp_path: Path, portable: bool
) -> None:
    failure = RuntimeError("sink broke")
    with anyio.fail_after(20), pytest.raises(Exception) as raised:
        await _run(_LATE_WRITER, tmp_path, portable=portable, sink=Sink(fail=failure))
    assert failure in _leaves(raised.value)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exception itself, or those an exception group holds (anyio's task groups wrap)."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


async def test_a_missing_working_directory_raises_file_not_found(
    tmp_path: Path, portable: bool
) -> None:
    with pytest.raises(FileNotFoundError):
        await _run("true", tmp_path / "absent", portable=portable)


@pytest.fixture
def real_tmp_path(tmp_path: Path) -> Path:
    return tmp_path.resolve()


async def test_the_shell_gets_exactly_its_env_cwd_stdin_and_a_session_of_its_own(
    real_tmp_path: Path, portable: bool
) -> None:
    env = {"PATH": os.environ["PATH"], "ONLY_THIS": "1"}
    command = (
        'echo "$0|$#|$1"; pwd -P; readlink /proc/$$/fd/0; env | cut -d= -f1 | sort; '
        "echo $$; cut -d' ' -f5,6 /proc/$$/stat"
    )
    code, _, sink = await _run(command, real_tmp_path, portable=portable, env=env)
    assert code == 0
    lines = bytes(sink.out).decode().splitlines()
    assert lines[0] == "/bin/sh|0|"
    assert lines[1] == str(real_tmp_path)
    assert lines[2] == "/dev/null"
    # The shell itself exports PWD; nothing else but the given variables.
    assert set(lines[3:-2]) - {"PWD"} == set(env)
    pid = lines[-2]
    assert lines[-1] == f"{pid} {pid}"  # process group and session both led by the shell


async def test_descriptors_of_the_runner_do_not_leak_into_the_command(
    tmp_path: Path, portable: bool
) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    inheritable = fcntl.fcntl(devnull, fcntl.F_DUPFD, 100)
    try:
        assert os.get_inheritable(inheritable)
        code, _, sink = await _run("ls /proc/$$/fd", tmp_path, portable=portable)
    finally:
        os.close(inheritable)
        os.close(devnull)
    assert code == 0
    assert str(inheritable) not in bytes(sink.out).decode().split()


async def test_no_fd_zombie_or_process_is_left_behind_on_any_path(
    tmp_path: Path, portable: bool
) -> None:
    seconds = marker_seconds()
    await _run("true", tmp_path, portable=portable)  # lazily made loop resources
    fds, children = _open_fds(), _children()
    with anyio.fail_after(60):
        for index in range(40):
            code, _, _ = await _run(
                f"echo {index}; echo {index} >&2; exit {index % 3}", tmp_path, portable=portable
            )
            assert code == index % 3
        for _ in range(4):
            code, timed_out, _ = await _run(
                f"sleep {seconds} & sleep {seconds}", tmp_path, portable=portable, timeout_ms=50
            )
            assert (code, timed_out) == (124, True)
            with anyio.CancelScope() as scope:
                await _run(
                    f"sleep {seconds} & yes", tmp_path, portable=portable, sink=Sink(cancel=scope)
                )
            assert scope.cancelled_caught
            with pytest.raises(Exception):  # noqa: B017 (see the sink test for the type)
                await _run(
                    f"sleep {seconds} & yes", tmp_path, portable=portable, sink=Sink(fail=OSError())
                )
            with pytest.raises(FileNotFoundError):
                await _run("true", tmp_path / "absent", portable=portable)
            await _run(f"sleep {seconds} & kill -KILL $$", tmp_path, portable=portable)
    assert _open_fds() == fds
    assert _children() <= children
    assert live_processes_with(seconds) == []


async def test_the_event_loop_watches_commands_itself_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_anyio_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("the portable path ran")

    monkeypatch.setattr(anyio, "open_process", no_anyio_process)
    code, _, sink = await _run("echo ok", tmp_path, portable=False)
    assert (code, bytes(sink.out)) == (0, b"ok\n")


def test_the_probe_finds_no_pidfds_where_pidfd_open_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", unsupported)
    _spawn.pidfd_supported.cache_clear()
    try:
        assert not _spawn.pidfd_supported()
    finally:
        _spawn.pidfd_supported.cache_clear()


async def test_without_pidfds_commands_run_on_the_portable_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not os.pidfd_open itself: asyncio's own child watcher, set up by earlier tests, uses it.
    monkeypatch.setattr(_spawn, "pidfd_supported", lambda: False)
    assert _spawn.watching_loop() is None
    code, _, sink = await _run("echo ok; exit 3", tmp_path, portable=False)
    assert (code, bytes(sink.out)) == (3, b"ok\n")


def test_outside_an_asyncio_loop_nothing_is_watched_from_one() -> None:
    # What other anyio backends (trio) see: no running asyncio loop, so the portable path.
    assert _spawn.watching_loop() is None


async def test_each_command_gets_the_env_as_it_is_when_it_starts(tmp_path: Path) -> None:
    # The executor keeps the last env's encoding; an env changed in place since must not
    # reach the next command stale, nor an equal env built anew be re-encoded wrongly.
    env = {"PATH": os.environ["PATH"], "FLAVOR": "plain"}
    seen = []
    for flavor in ("plain", "spicy", "spicy", "plain"):
        env["FLAVOR"] = flavor  # the same mapping, changed in place
        _, _, sink = await _run('printf %s "$FLAVOR"', tmp_path, portable=False, env=env)
        seen.append(bytes(sink.out).decode())
    fresh = {**env, "FLAVOR": "mild"}
    _, _, sink = await _run('printf %s "$FLAVOR"', tmp_path, portable=False, env=fresh)
    assert [*seen, bytes(sink.out).decode()] == ["plain", "spicy", "spicy", "plain", "mild"]
