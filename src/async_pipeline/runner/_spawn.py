"""A shell command watched from the asyncio event loop, and its process group.

The host executor's fast path (asyncio, Linux pidfds): ``subprocess.Popen`` starts the
command exactly as ``anyio.open_process`` does (cwd, exactly the given env, stdin from
/dev/null, every fd but 0-2 closed, a session of its own), then the running loop watches
three file descriptors with plain reader callbacks: the stdout and stderr pipes, and a
pidfd that turns readable when the shell exits. No transports, streams, task groups, events
or helper tasks. 1,000 ``echo x >/dev/null`` at concurrency 2 through ``run_shell`` took
0.78 s wall and 0.49 s of the runner's CPU that way, 0.51 s and 0.24 s this way (a bare
``posix_spawn`` loop: 0.34 s). Measured and not taken: ``os.posix_spawn`` starts a shell
~40 us sooner than ``Popen`` but can neither change directory nor close inherited fds; a
spawning thread made a cold run slower (the GIL changes hands twice per command).

The shell is reaped last, after the final KILL of its group: until then its zombie holds
the process group id, so a signal meant for this group cannot reach a new one reusing it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import anyio

__all__ = [
    "group_alive",
    "group_members",
    "proc_stats",
    "run_watched",
    "signal_group",
    "watching_loop",
]

Sink = Callable[[bytes], None]

# One read per readiness callback; a pipe holds 64 KiB by default on Linux.
CHUNK = 64 * 1024
GROUP_POLL_SECONDS = 0.02


@functools.cache
def pidfd_supported() -> bool:
    """Whether this system has pidfds (Linux 5.3+ and a Python that exposes them)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def watching_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop when the caller's task runs on one that can watch children
    itself; None on other backends (trio) or without pidfds."""
    if not pidfd_supported():
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def run_watched(
    loop: asyncio.AbstractEventLoop,
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdout: Sink,
    stderr: Sink,
    limit: float | None,
    grace: float,
    drain: float,
) -> tuple[int, bool]:
    """Run ``argv`` in a session of its own until it exits and its output is drained, then
    KILL what is left of its group; (its return code as ``Popen`` has it, whether it timed
    out).

    Past ``limit`` seconds (a timeout) or on a cancellation, the group gets TERM, ``grace``
    seconds, then KILL. After the shell exits, its group gets TERM (so a background child
    holding a pipe cannot keep the command open) and the pipes ``drain`` seconds to reach
    their end; then KILL.
    """
    # Unlike anyio.open_process, the spawn needs no shield: nothing awaits between it and
    # the try below, so no cancellation can leave a process group nobody knows about.
    process, out_fd, err_fd = _spawn(argv, cwd, env)
    pid = process.pid
    watch: _Watch | None = None
    timed_out = False
    try:
        watch = _Watch(loop, pid, out_fd, err_fd, stdout, stderr)
        deadline = None if limit is None else loop.time() + limit
        if await watch.until(watch.exited_or_failed, deadline):
            watch.raise_error()
            # The shell is done. Whatever it left running in its group ends with the task;
            # otherwise an inherited pipe would keep the task open forever.
            signal_group(pid, signal.SIGTERM)
            watch.read_pending()
        else:
            timed_out = True
            await _terminate(watch, pid, grace)
        await watch.until(watch.drained_or_failed, loop.time() + drain)
        watch.raise_error()
    except BaseException:
        if watch is not None:
            with anyio.CancelScope(shield=True):
                await _terminate(watch, pid, grace)
        raise
    finally:
        signal_group(pid, signal.SIGKILL)
        if watch is not None:
            watch.close()
        else:
            os.close(out_fd)
            os.close(err_fd)
        # Exited (or just KILLed, if the terminate above was interrupted): no real wait.
        process.wait()
    assert process.returncode is not None
    return process.returncode, timed_out


_encoded: tuple[dict[str, str], dict[bytes, bytes]] | None = None


def _encoded_env(env: Mapping[str, str]) -> dict[bytes, bytes]:
    """``env`` as bytes. Popen encodes a str env key by key on every spawn (~80 variables
    here, about a tenth of a millisecond); most tasks of a run share one env, so the last
    encoding is kept and reused while the env is equal to it (a dict comparison, in C)."""
    global _encoded
    cached = _encoded  # one read: loops in other threads may replace it meanwhile
    if cached is None or cached[0] != env:
        plain = dict(env)
        cached = _encoded = (plain, {os.fsencode(k): os.fsencode(v) for k, v in plain.items()})
    return cached[1]


def _spawn(
    argv: list[str], cwd: Path, env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start ``argv``; the process and the read ends of its stdout and stderr pipes."""
    fds: list[int] = []
    try:
        out_read, out_write = os.pipe()
        fds += (out_read, out_write)
        err_read, err_write = os.pipe()
        fds += (err_read, err_write)
        # Not stdout=PIPE: that would wrap each read end in a file object nobody uses.
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=_encoded_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out_write,
            stderr=err_write,
            start_new_session=True,
        )
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    os.close(out_write)
    os.close(err_write)
    return process, out_read, err_read


async def _terminate(watch: _Watch, pid: int, grace: float) -> None:
    """TERM the whole group, wait a grace period, then KILL what is left; returns once the
    shell has exited."""
    loop = watch.loop
    signal_group(pid, signal.SIGTERM)
    deadline = loop.time() + grace
    if await watch.until(watch.has_exited, deadline):
        # A process group's end has no event to wait on; poll it within the grace period.
        while loop.time() < deadline and group_alive(pid):  # noqa: ASYNC110
            await asyncio.sleep(GROUP_POLL_SECONDS)
    signal_group(pid, signal.SIGKILL)
    await watch.until(watch.has_exited, None)


class _Watch:
    """What the loop's callbacks have seen of one command: its exit, its open pipes, a
    failing sink. A waiter parks on one plain future, resolved whenever any of that changes
    (not on every chunk of output)."""

    __slots__ = ("_pidfd", "_pipes", "_waiter", "error", "exited", "loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pid: int,
        out_fd: int,
        err_fd: int,
        stdout: Sink,
        stderr: Sink,
    ) -> None:
        self.loop = loop
        self.exited = False
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        # Still open read ends and where their bytes go. They are the caller's to close
        # until this constructor returns, then close() closes them.
        self._pipes: dict[int, Sink] = {out_fd: stdout, err_fd: stderr}
        self._pidfd = os.pidfd_open(pid)
        try:
            for fd, sink in self._pipes.items():
                os.set_blocking(fd, False)
                loop.add_reader(fd, self._read, fd, sink)
            loop.add_reader(self._pidfd, self._on_exit)
        except BaseException:
            for fd in (*self._pipes, self._pidfd):
                loop.remove_reader(fd)
            os.close(self._pidfd)
            raise

    def has_exited(self) -> bool:
        return self.exited

    def exited_or_failed(self) -> bool:
        return self.exited or self.error is not None

    def drained_or_failed(self) -> bool:
        return not self._pipes or self.error is not None

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    async def until(self, ready: Callable[[], bool], deadline: float | None) -> bool:
        """Wait until ``ready()`` or the deadline (loop time); whether ``ready()`` holds."""
        loop = self.loop
        while not ready():
            if deadline is not None and loop.time() >= deadline:
                return False
            waiter = self._waiter = loop.create_future()
            timer = None if deadline is None else loop.call_at(deadline, _resolve, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        return True

    def read_pending(self) -> None:
        """Read once more from each open pipe: right after the shell's exit this usually
        finds the end of the output and saves waiting a loop iteration for it."""
        for fd, sink in list(self._pipes.items()):
            self._read(fd, sink)

    def close(self) -> None:
        """Stop watching and close every fd this watch owns (reaping is the caller's)."""
        for fd in self._pipes:
            self.loop.remove_reader(fd)
            os.close(fd)
        self._pipes.clear()
        if self._pidfd >= 0:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    def _read(self, fd: int, sink: Sink) -> None:
        try:
            chunk = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.loop.remove_reader(fd)
            os.close(fd)
            del self._pipes[fd]
            self._wake()
            return
        try:
            sink(chunk)
        except Exception as exc:
            # Raised by run_watched once it wakes up; stop reading until then.
            if self.error is None:
                self.error = exc
            for open_fd in self._pipes:
                self.loop.remove_reader(open_fd)
            self._wake()

    def _on_exit(self) -> None:
        # Not reaped here: see the module docstring.
        self.loop.remove_reader(self._pidfd)
        self.exited = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies awaiting reaping are not)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids in a process group, read from /proc; [] where /proc is absent."""
    return [
        pid
        for pid, fields in proc_stats()
        if len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid
    ]


def proc_stats() -> Iterator[tuple[int, list[bytes]]]:
    """Each process's pid and the fields of its /proc/<pid>/stat after the command name
    (state, ppid, pgrp, ...); nothing where /proc is absent. A process that ends while
    this looks is skipped."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may itself hold ')' or spaces.
        yield int(entry), stat[stat.rfind(b")") + 2 :].split()
