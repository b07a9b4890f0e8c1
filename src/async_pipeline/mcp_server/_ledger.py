"""What the stdio transport owes the host: an answer to every request it forwarded.

``_stdio`` forwards requests to the SDK and writes the SDK's answers; in between, this ledger
keeps one claim per forwarded request until it is settled, by the answer going out or by the
SDK telling us it will not answer (a request the host cancelled). Three things hang on it:

- **End of input.** The SDK cancels every handler still running when its input stream ends,
  so the transport keeps that stream open after stdin's EOF until the ledger is idle: a host
  that pipes requests and closes stdin gets every answer before the server exits.
- **Batches** (protocol 2025-03-26 only). The answers to one batch line go out together as
  one JSON array, once the last of them is in.
- **The negotiated version**, read off the answer to ``initialize``, which decides whether a
  batch is taken apart or refused.

Everything here runs on the event loop's one thread, so no locking is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import mcp_types as types
from mcp.shared.dispatcher import coerce_request_id

__all__ = ["Answers", "Claim", "Ledger"]

Answer = types.JSONRPCResponse | types.JSONRPCError


@dataclass(eq=False)
class Answers:
    """The answers to one batch line, collected until the last one is in."""

    replies: list[types.JSONRPCMessage] = field(default_factory=list)
    waiting: int = 0
    sent: bool = False

    @property
    def ready(self) -> bool:
        """Complete and not yet written."""
        return self.waiting == 0 and not self.sent


@dataclass(eq=False)
class Claim:
    """One forwarded request still owed an answer (ids may repeat; claims do not)."""

    request_id: types.RequestId
    batch: Answers | None
    initialize: bool


class Ledger:
    """The claims of one stdio session, and what its ``initialize`` negotiated."""

    def __init__(self) -> None:
        self.asked: set[types.RequestId] = set()
        """Ids of the requests the server sent the host, so that only answers to them go in."""
        self.version: str | None = None
        self._owed: dict[types.RequestId, list[Claim]] = {}
        self._count = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._initialized: anyio.Event | None = None

    def owe(self, request: types.JSONRPCRequest, batch: Answers | None = None) -> Claim:
        """Record that ``request`` is about to go to the SDK and will be answered."""
        claim = Claim(request.id, batch, initialize=request.method == "initialize")
        self._owed.setdefault(request.id, []).append(claim)
        self._count += 1
        if self._idle.is_set():
            self._idle = anyio.Event()
        if batch is not None:
            batch.waiting += 1
        if claim.initialize:
            self._initialized = anyio.Event()
        return claim

    def answer(self, message: Answer) -> Answer | Answers | None:
        """Settle the claim ``message`` answers: what to write now (the message, the batch
        it completed) or nothing (it waits in its batch)."""
        claims = self._owed.get(message.id) if message.id is not None else None
        if not claims:
            return message  # a front-end error, or an answer we stopped waiting for
        claim = claims[0]
        if claim.initialize and isinstance(message, types.JSONRPCResponse):
            version = message.result.get("protocolVersion")
            self.version = version if isinstance(version, str) else None
        self.settle(claim)
        if claim.batch is None:
            return message
        claim.batch.replies.append(message)
        return claim.batch if claim.batch.ready else None

    def settle(self, claim: Claim) -> Answers | None:
        """Drop ``claim`` (answered, or never to be); the batch it completed, if any."""
        claims = self._owed.get(claim.request_id, [])
        if not any(c is claim for c in claims):
            return None  # settled already
        claims[:] = [c for c in claims if c is not claim]
        if not claims:
            del self._owed[claim.request_id]
        self._count -= 1
        if self._count == 0:
            self._idle.set()
        if claim.initialize and self._initialized is not None:
            self._initialized.set()
        if claim.batch is None:
            return None
        claim.batch.waiting -= 1
        return claim.batch if claim.batch.ready else None

    def cancelled(self, request_id: types.RequestId) -> list[Answers]:
        """The host cancelled ``request_id``: it may go unanswered. The batches that completes.

        Ids are compared as the SDK compares them (``"7"`` cancels request ``7``). An answer
        the SDK had already queued is still written, on its own line.
        """
        wanted = coerce_request_id(request_id)
        done = []
        for key in [key for key in self._owed if coerce_request_id(key) == wanted]:
            for claim in list(self._owed.get(key, [])):
                batch = self.settle(claim)
                if batch is not None:
                    done.append(batch)
        return done

    async def negotiated(self) -> str | None:
        """The protocol version, once an ``initialize`` already forwarded has been answered."""
        if self._initialized is not None:
            await self._initialized.wait()
        return self.version

    async def idle(self) -> None:
        """Return once every forwarded request has been answered (or will never be)."""
        await self._idle.wait()
