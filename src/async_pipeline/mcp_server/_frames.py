"""Triage of raw stdio lines: forward well-formed JSON-RPC, answer or drop everything else.

The SDK's stdio transport drops a line it cannot validate without a word, so a host that
sent a typo waits forever. JSON-RPC 2.0 asks for a reply instead: ``-32700`` when the line
is not JSON, ``-32600`` when it is not a request object, with ``id: null`` whenever the id
cannot be read. This module decides, for one line, which of four things happens (see
adr/0003): the message goes on to the SDK, an error goes back, the line is a batch (a JSON
array, whose elements get the same decision one by one), or (a malformed notification, a
stray response) nothing happens at all.

It is pure and synchronous so it can be tested without a process; ``_stdio`` does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson
import pydantic

__all__ = [
    "BATCH_VERSIONS",
    "MAX_LINE_BYTES",
    "Batch",
    "LineSplitter",
    "Oversized",
    "Reply",
    "batch_refused",
    "error_reply",
    "triage",
    "triage_body",
    "triage_value",
]

MAX_LINE_BYTES = 4 * 1024 * 1024
"""Longest line we read; longer ones are answered with ``-32600`` and skipped unread."""

_BLANK = b" \t\r"

BATCH_VERSIONS = frozenset({"2025-03-26"})
"""MCP revisions with JSON-RPC batches: added in 2025-03-26, removed again in 2025-06-18."""


@dataclass(frozen=True)
class Oversized:
    """A line longer than the limit, already discarded; only its length is kept."""

    size: int


class LineSplitter:
    """Cut a byte stream into lines without ever holding more than ``limit`` bytes of one.

    A line that outgrows the limit is dropped as it arrives (the rest of it up to the next
    newline is skipped), so a host that sends a gigabyte without a newline costs us at most
    ``limit`` bytes of memory, not a gigabyte.
    """

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self._limit = limit
        self._pending = bytearray()
        self._skipped = 0  # > 0 while we are skipping the rest of an oversized line

    def feed(self, chunk: bytes) -> Iterator[bytes | Oversized]:
        """The lines (without their newline) that ``chunk`` completes, in order."""
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if self._skipped:
                self._skipped += len(piece)
            elif len(self._pending) + len(piece) > self._limit:
                self._skipped = len(self._pending) + len(piece)
                self._pending.clear()
            else:
                self._pending += piece
            if end < 0:
                return
            yield from self._finish()
            start = end + 1

    def close(self) -> Iterator[bytes | Oversized]:
        """What is left when the stream ends without a final newline."""
        if self._pending or self._skipped:
            yield from self._finish()

    def _finish(self) -> Iterator[bytes | Oversized]:
        if self._skipped:
            yield Oversized(self._skipped)
        else:
            yield bytes(self._pending)
        self._skipped = 0
        self._pending.clear()


@dataclass(frozen=True)
class Reply:
    """An error we answer ourselves; the line goes no further."""

    message: types.JSONRPCError


def error_reply(code: int, message: str, request_id: Any = None) -> Reply:
    """A JSON-RPC error; ``request_id`` is ``None`` when the request's id could not be read."""
    error = types.ErrorData(code=code, message=message)
    return Reply(types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error))


@dataclass(frozen=True)
class Batch:
    """A non-empty JSON array: a JSON-RPC batch, its elements not yet looked at."""

    items: tuple[Any, ...]


def batch_refused() -> Reply:
    """The one answer to a whole batch on a session whose protocol has no batches."""
    return error_reply(types.INVALID_REQUEST, "Invalid Request: batches are not supported")


def _valid_id(value: Any) -> bool:
    # MCP ids are strings or integers; null, booleans and fractions are refused (a bool is
    # an int to Python, so it is ruled out first).
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def triage(line: bytes | Oversized) -> types.JSONRPCMessage | Reply | Batch | None:
    """What to do with one line: a message for the SDK, an error to send back, a batch to
    take apart (when the session's protocol has batches), or nothing."""
    if isinstance(line, Oversized):
        return error_reply(
            types.INVALID_REQUEST,
            f"Invalid Request: message of {line.size} bytes exceeds {MAX_LINE_BYTES}",
        )
    if not line.strip(_BLANK):
        return None  # a blank line (or a CR of a CRLF host) is not a message
    try:
        # orjson refuses invalid UTF-8, lone surrogates, numbers beyond a double and
        # nesting deeper than 1024: all of it is "not JSON we can read", so -32700.
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return error_reply(types.PARSE_ERROR, f"Parse error: {exc}")
    if isinstance(data, list):
        # JSON-RPC answers an empty array with one error object, never with an empty array.
        if not data:
            return error_reply(types.INVALID_REQUEST, "Invalid Request: empty batch")
        return Batch(tuple(data))
    return triage_value(data)


def triage_body(body: bytes | Oversized) -> types.JSONRPCMessage | Reply | Batch:
    """:func:`triage` for an HTTP POST body, which always gets an answer.

    What stdio passes over in silence (a blank line, a malformed notification, a response
    that does not validate) is refused here: HTTP must answer every POST, and a 400 with a
    reason beats one without. The reason is the one stdio gives a request with an id.
    """
    verdict = triage(body)
    if verdict is not None:
        return verdict
    assert not isinstance(body, Oversized)  # always answered by triage
    if not body.strip(_BLANK + b"\n"):
        return error_reply(types.PARSE_ERROR, "Parse error: empty body")
    data = orjson.loads(body)  # triage parsed it already
    if isinstance(data, dict) and "method" in data and "id" not in data:
        # A notification triage dropped: ask again as a request to learn what is wrong.
        reply = triage_value({**data, "id": 0})
        if isinstance(reply, Reply):
            return error_reply(reply.message.error.code, reply.message.error.message)
    return error_reply(types.INVALID_REQUEST, "Invalid Request: not a valid JSON-RPC message")


def triage_value(data: Any) -> types.JSONRPCMessage | Reply | None:
    """:func:`triage` for one parsed value: a whole line, or one element of a batch."""
    if not isinstance(data, dict):
        return error_reply(types.INVALID_REQUEST, "Invalid Request: not a JSON object")
    return _check_envelope(data)


def _check_envelope(data: dict[str, Any]) -> types.JSONRPCMessage | Reply | None:
    has_id = "id" in data
    request_id = data.get("id")
    if has_id and not _valid_id(request_id):
        return error_reply(types.INVALID_REQUEST, "Invalid Request: id must be a string or integer")
    if "method" not in data:
        if "result" in data or "error" in data:
            # A response from the host: forwarded when valid, but never answered, since an
            # answer to an answer is how two peers end up in a loop.
            return _validated(data)
        return error_reply(types.INVALID_REQUEST, "Invalid Request: no method", request_id)
    # A notification (no id) is never answered, even when it is malformed.
    reply_id = request_id if has_id else None
    problem = _envelope_problem(data)
    if problem is not None:
        return error_reply(types.INVALID_REQUEST, problem, reply_id) if has_id else None
    if "params" in data and not isinstance(data["params"], dict):
        if not has_id:
            return None
        return error_reply(types.INVALID_PARAMS, "Invalid params: must be an object", reply_id)
    message = _validated(data)
    if message is None and has_id:
        return error_reply(types.INVALID_REQUEST, "Invalid Request", reply_id)
    return message


def _envelope_problem(data: dict[str, Any]) -> str | None:
    if data.get("jsonrpc") != "2.0":
        return 'Invalid Request: jsonrpc must be "2.0"'
    method = data["method"]
    if not isinstance(method, str) or not method:
        return "Invalid Request: method must be a non-empty string"
    return None


def _validated(data: dict[str, Any]) -> types.JSONRPCMessage | None:
    try:
        return types.jsonrpc_message_adapter.validate_python(data, by_name=False)
    except pydantic.ValidationError:
        return None
