"""Our stdio transport: bounded line reading and JSON-RPC triage in front of the SDK session.

The SDK's ``stdio_server()`` decodes stdin leniently and silently drops every line it cannot
validate, so a malformed request is never answered and an endless line is buffered whole.
This transport reads raw bytes, cuts them into lines of at most ``MAX_LINE_BYTES``, lets
``_frames.triage`` decide, answers malformed messages itself and hands only well-formed
ones to the SDK's server through in-memory streams, the same seam the SDK's own transports
use (see adr/0003).

Stdin's end is not a cancellation: every request read before it is answered, then the
server exits (``_ledger`` keeps count). On a session that negotiated protocol 2025-03-26, a
JSON array is a JSON-RPC batch: its requests go to the SDK one by one and their answers come
back as one array; later protocols refuse batches.

Like the SDK's transport it moves the wire off fds 0 and 1 while serving: fd 1 points at
stderr and fd 0 at the null device, so a stray ``print`` or a child process reading stdin
cannot touch the protocol stream.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.lowlevel import Server
from mcp.shared.dispatcher import as_request_id
from mcp.shared.message import ServerMessageMetadata, SessionMessage

from async_pipeline.mcp_server._frames import (
    BATCH_VERSIONS,
    Batch,
    LineSplitter,
    Reply,
    batch_refused,
    error_reply,
    triage,
    triage_value,
)
from async_pipeline.mcp_server._ledger import Answers, Claim, Ledger

__all__ = ["serve_stdio"]

_CHUNK = 256 * 1024
# Replies queue here while the host is slow to read; beyond it the sender waits, which in
# turn stops us reading stdin: backpressure rather than unbounded memory.
_OUTBOX = 256

Outgoing = SessionMessage | Answers
"""What goes to the writer: one message, or a batch's answers (written once complete)."""


async def serve_stdio(server: Server[Any]) -> None:
    """Serve ``server`` on this process's stdin/stdout until stdin closes.

    Every request read before stdin's end is answered before this returns.
    """
    with _claimed_stdio() as (wire_in, wire_out):
        to_server, from_host = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        outbox, to_host = anyio.create_memory_object_stream[Outgoing](_OUTBOX)
        ledger = Ledger()
        async with anyio.create_task_group() as group:
            group.start_soon(_write, to_host, wire_out, group, ledger)
            group.start_soon(_read, wire_in, to_server, outbox.clone(), ledger)
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
    outbox: MemoryObjectSendStream[Outgoing],
    ledger: Ledger,
) -> None:
    splitter = LineSplitter()
    host = _Host(to_server, outbox, ledger)
    async with to_server, outbox:
        while True:
            # A blocking read in a worker thread: it works for pipes, files and ttys alike.
            # abandon_on_cancel lets a signal stop the server while the host is silent.
            chunk = await anyio.to_thread.run_sync(os.read, wire_in, _CHUNK, abandon_on_cancel=True)
            # At the end, close() hands over a last line that had no newline.
            for line in splitter.feed(chunk) if chunk else splitter.close():
                await host.take(triage(line))
            if not chunk:
                break
        # The SDK cancels whatever is still running once its input ends, but a host closing
        # stdin is done asking, not withdrawing its questions: answer them first.
        await ledger.idle()


class _Host:
    """Where each verdict on a line from the host goes: to the SDK or straight back."""

    def __init__(
        self,
        to_server: MemoryObjectSendStream[SessionMessage | Exception],
        outbox: MemoryObjectSendStream[Outgoing],
        ledger: Ledger,
    ) -> None:
        self._to_server = to_server
        self._outbox = outbox
        self._ledger = ledger

    async def take(self, verdict: types.JSONRPCMessage | Reply | Batch | None) -> None:
        if isinstance(verdict, Reply):
            await self._outbox.send(SessionMessage(verdict.message))
        elif isinstance(verdict, Batch):
            await self._batch(verdict)
        elif verdict is not None:
            await self._forward(verdict)

    async def _batch(self, batch: Batch) -> None:
        # Whether batches exist depends on the version initialize settles; a host may have
        # sent this line before that answer went out, so wait for it.
        if await self._ledger.negotiated() not in BATCH_VERSIONS:
            await self._outbox.send(SessionMessage(batch_refused().message))
            return
        answers = Answers()
        messages: list[types.JSONRPCMessage] = []
        for item in batch.items:
            verdict = triage_value(item)
            if isinstance(verdict, types.JSONRPCRequest) and verdict.method == "initialize":
                verdict = error_reply(
                    types.INVALID_REQUEST,
                    "Invalid Request: initialize must not be part of a batch",
                    verdict.id,
                )
            if isinstance(verdict, Reply):
                answers.replies.append(verdict.message)
            elif verdict is not None:
                messages.append(verdict)
        # Every claim is made before the first request goes, so that the batch cannot look
        # complete while some of it has not been forwarded yet.
        claimed = [
            (message, self._ledger.owe(message, answers))
            if isinstance(message, types.JSONRPCRequest)
            else (message, None)
            for message in messages
        ]
        for message, claim in claimed:
            await self._forward(message, claim)
        # Written by _write once complete: now, if nothing in it waits for the SDK.
        await self._outbox.send(answers)

    async def _forward(self, message: types.JSONRPCMessage, claim: Claim | None = None) -> None:
        if isinstance(message, types.JSONRPCRequest):
            claim = claim if claim is not None else self._ledger.owe(message)
            metadata = ServerMessageMetadata(on_request_unanswered=self._unanswered(claim))
            await self._to_server.send(SessionMessage(message, metadata))
            return
        if isinstance(message, types.JSONRPCNotification):
            if message.method == "notifications/cancelled":
                request_id = as_request_id((message.params or {}).get("requestId"))
                if request_id is not None:
                    for answers in self._ledger.cancelled(request_id):
                        await self._outbox.send(answers)
        elif not _expected(message, self._ledger.asked):
            return
        await self._to_server.send(SessionMessage(message))

    def _unanswered(self, claim: Claim) -> Callable[[], Awaitable[None]]:
        async def settle() -> None:
            # The SDK will not answer this request (the host cancelled it).
            answers = self._ledger.settle(claim)
            if answers is not None:
                with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self._outbox.send(answers)

        return settle


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
    to_host: MemoryObjectReceiveStream[Outgoing],
    wire_out: int,
    group: TaskGroup,
    ledger: Ledger,
) -> None:
    async with to_host:
        async for first in to_host:
            burst = [first]
            # Everything already queued goes out in one write: one thread hop per burst,
            # not per message, which is what keeps a pipelining host fast. The queue may
            # also have ended meanwhile; what was taken from it is still written.
            with suppress(anyio.WouldBlock, anyio.EndOfStream):
                while len(burst) < _OUTBOX:
                    burst.append(to_host.receive_nowait())
            data = b"".join(_encode(item, ledger) for item in burst)
            if not data:
                continue
            try:
                await anyio.to_thread.run_sync(_write_all, wire_out, data)
            except OSError:
                # The host closed its end: nobody is listening, so stop serving.
                group.cancel_scope.cancel()
                return


def _encode(item: Outgoing, ledger: Ledger) -> bytes:
    if isinstance(item, Answers):
        return _array(item)
    message = item.message
    if isinstance(message, types.JSONRPCRequest):
        ledger.asked.add(message.id)
    elif isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
        settled = ledger.answer(message)
        if settled is None:
            return b""  # it waits for the rest of its batch
        if isinstance(settled, Answers):
            return _array(settled)
    return _line(message)


def _array(answers: Answers) -> bytes:
    if not answers.ready:
        return b""
    answers.sent = True
    if not answers.replies:
        return b""  # a batch of notifications is answered with nothing at all
    return b"[" + b",".join(_json(message) for message in answers.replies) + b"]\n"


def _line(message: types.JSONRPCMessage) -> bytes:
    return _json(message) + b"\n"


def _json(message: types.JSONRPCMessage) -> bytes:
    # The SDK's own wire form: aliases (camelCase), only the fields that were set.
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
