"""Our stdio transport: bounded line reading and JSON-RPC triage in front of the SDK session.

The SDK's ``stdio_server()`` decodes stdin leniently and silently drops every line it cannot
validate, so a malformed request is never answered and an endless line is buffered whole.
This transport reads raw bytes, cuts them into lines of at most ``MAX_LINE_BYTES``, lets
``_frames.triage`` decide, answers malformed messages itself and hands only well-formed
ones to the SDK's server through in-memory streams, the same seam the SDK's own transports
use (see adr/0003).

Like the SDK's transport it moves the wire off fds 0 and 1 while serving: fd 1 points at
stderr and fd 0 at the null device, so a stray ``print`` or a child process reading stdin
cannot touch the protocol stream.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.lowlevel import Server
from mcp.shared.message import SessionMessage

from async_pipeline.mcp_server._frames import LineSplitter, Reply, triage

__all__ = ["serve_stdio"]

_CHUNK = 256 * 1024
# Replies queue here while the host is slow to read; beyond it the sender waits, which in
# turn stops us reading stdin: backpressure rather than unbounded memory.
_OUTBOX = 256


async def serve_stdio(server: Server[Any]) -> None:
    """Serve ``server`` on this process's stdin/stdout until stdin closes."""
    with _claimed_stdio() as (wire_in, wire_out):
        to_server, from_host = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        outbox, to_host = anyio.create_memory_object_stream[SessionMessage](_OUTBOX)
        # Ids of the requests the server sent the host, so that only answers to them go in.
        asked: set[types.RequestId] = set()
        async with anyio.create_task_group() as group:
            group.start_soon(_write, to_host, wire_out, group, asked)
            group.start_soon(_read, wire_in, to_server, outbox.clone(), asked)
            async with outbox:
                await server.run(from_host, outbox, server.create_initialization_options())


@contextmanager
def _claimed_stdio() -> Iterator[tuple[int, int]]:
    # Private copies of the wire above the standard range (and not inherited by children).
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
    finally:
        os.close(null)
    try:
        yield wire_in, wire_out
    finally:
        # Whatever a step printed is still in sys.stdout's buffer: flush it to stderr now,
        # before fd 1 is the wire again.
        with suppress(OSError, ValueError):
            sys.stdout.flush()
        os.dup2(wire_out, 1)
        os.dup2(wire_in, 0)
        os.close(wire_out)
        # wire_in stays open: a reader thread abandoned by a signal may still be blocked on
        # it, and closing it would let the descriptor number be reused under that thread.


async def _read(
    wire_in: int,
    to_server: MemoryObjectSendStream[SessionMessage | Exception],
    outbox: MemoryObjectSendStream[SessionMessage],
    asked: set[types.RequestId],
) -> None:
    splitter = LineSplitter()
    async with to_server, outbox:
        while True:
            # A blocking read in a worker thread: it works for pipes, files and ttys alike.
            # abandon_on_cancel lets a signal stop the server while the host is silent.
            chunk = await anyio.to_thread.run_sync(os.read, wire_in, _CHUNK, abandon_on_cancel=True)
            lines = splitter.feed(chunk) if chunk else splitter.close()
            for line in lines:
                verdict = triage(line)
                if isinstance(verdict, Reply):
                    await outbox.send(SessionMessage(verdict.message))
                elif verdict is not None and _expected(verdict, asked):
                    await to_server.send(SessionMessage(verdict))
            if not chunk:
                return


def _expected(message: types.JSONRPCMessage, asked: set[types.RequestId]) -> bool:
    if not isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
        return True
    # A response to nothing we asked is dropped: the SDK (2.3.0) would echo such an error
    # response back to the host instead of ignoring it.
    if message.id not in asked:
        return False
    asked.discard(message.id)
    return True


async def _write(
    to_host: MemoryObjectReceiveStream[SessionMessage],
    wire_out: int,
    group: TaskGroup,
    asked: set[types.RequestId],
) -> None:
    async with to_host:
        async for first in to_host:
            batch = [first]
            # Everything already queued goes out in one write: one thread hop per burst,
            # not per message, which is what keeps a pipelining host fast.
            with suppress(anyio.WouldBlock):
                while len(batch) < _OUTBOX:
                    batch.append(to_host.receive_nowait())
            asked.update(
                item.message.id for item in batch if isinstance(item.message, types.JSONRPCRequest)
            )
            data = b"".join(_line(message) for message in batch)
            try:
                await anyio.to_thread.run_sync(_write_all, wire_out, data)
            except OSError:
                # The host closed its end: nobody is listening, so stop serving.
                group.cancel_scope.cancel()
                return


def _line(message: SessionMessage) -> bytes:
    # The SDK's own wire form: aliases (camelCase), only the fields that were set.
    return message.message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
