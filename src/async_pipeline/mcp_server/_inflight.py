"""The ``run_job`` calls in progress, so a stopping server can interrupt them at once.

A request's own cancellation (``notifications/cancelled``) reaches a run through the SDK.
A server told to stop (SIGTERM over HTTP) must not wait for an HTTP server's graceful
timeout to do the same: :meth:`RunningJobs.stop` cancels every run's scope with the signal's
name as the reason, the runner finalizes each record (``interrupted: "SIGTERM"``) and each
handler answers its caller with :data:`SHUTTING_DOWN` while the response is still open.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

import anyio
from mcp.shared.exceptions import MCPError

if TYPE_CHECKING:
    from async_pipeline.runner.api import StopReason

__all__ = ["SHUTTING_DOWN", "RunningJobs", "shutting_down"]

SHUTTING_DOWN = -32800
"""JSON-RPC code for a request the server gave up because it is stopping: the code the
SDK's streamable HTTP transport (and LSP) use for a cancelled request."""


def shutting_down(what: str, data: Mapping[str, object] | None = None) -> MCPError:
    """The error a request gets when the server stops before answering it."""
    return MCPError(SHUTTING_DOWN, f"Request cancelled: the server is shutting down; {what}", data)


class RunningJobs:
    """Cancel scopes of the runs in progress, each with the ``StopReason`` its runner reads."""

    def __init__(self) -> None:
        self._runs: dict[anyio.CancelScope, StopReason] = {}
        self._stopping: str | None = None
        self._idle: anyio.Event | None = None

    @property
    def stopping(self) -> str | None:
        """Why the server is stopping (a signal's name), once it is."""
        return self._stopping

    @contextmanager
    def track(self, stop: StopReason) -> Iterator[anyio.CancelScope]:
        """A scope for one run; :meth:`stop` cancels it after setting ``stop.reason``."""
        if self._stopping is not None:
            raise shutting_down("no new run was started")
        with anyio.CancelScope() as scope:
            self._runs[scope] = stop
            try:
                yield scope
            finally:
                del self._runs[scope]
                if not self._runs and self._idle is not None:
                    self._idle.set()

    async def stop(self, reason: str) -> None:
        """Interrupt every run with ``reason``; return once their records are finalized."""
        self._stopping = reason
        if not self._runs:
            return
        self._idle = anyio.Event()
        for scope, stop in self._runs.items():
            stop.reason = stop.reason or reason
            scope.cancel()
        await self._idle.wait()
