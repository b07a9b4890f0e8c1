"""While a run executes, what a function step prints goes to its task's log.

A step's ``print()`` writes to ``sys.stdout``, which belongs to the CLI (where ``--format
json`` must print only the record) or to the MCP server (where stdout is the protocol).
For the run's duration ``sys.stdout``/``sys.stderr`` are routers: a write made inside a
step (its thread, or its async task, identified by a context variable that worker
threads inherit) reaches that task's redacted log; every other write passes through.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TextIO

__all__ = ["routed_stdio", "step_output"]

Sink = tuple[Callable[[bytes], None], Callable[[bytes], None]]
_SINK: ContextVar[Sink | None] = ContextVar("async_pipeline_step_sink", default=None)


class _Router:
    """A text stream that sends a step's writes to its log and the rest to ``fallback``."""

    def __init__(self, fallback: TextIO, index: int) -> None:
        self._fallback = fallback
        self._index = index

    def write(self, text: str) -> int:
        sink = _SINK.get()
        if sink is None:
            return self._fallback.write(text)
        sink[self._index](text.encode("utf-8", errors="replace"))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _SINK.get() is None:
            self._fallback.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, isatty, buffer...
        return getattr(self._fallback, name)


@contextlib.contextmanager
def routed_stdio() -> Iterator[None]:
    """Install the routers for the duration of a run (nesting is harmless)."""
    saved_out, saved_err = sys.stdout, sys.stderr
    sys.stdout = _Router(saved_out, 0)
    sys.stderr = _Router(saved_err, 1)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved_out, saved_err


@contextlib.contextmanager
def step_output(stdout: Callable[[bytes], None], stderr: Callable[[bytes], None]) -> Iterator[None]:
    """Within this block (and threads started from it), prints go to these sinks."""
    token = _SINK.set((stdout, stderr))
    try:
        yield
    finally:
        _SINK.reset(token)
