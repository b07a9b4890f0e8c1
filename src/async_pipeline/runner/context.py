"""The context a function step (or a deferred ``sh`` callback) receives as ``ctx``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from async_pipeline.core.steps import sh

__all__ = ["CandidateContext", "RootContext", "StepContext"]


@dataclass(frozen=True)
class RootContext:
    """The root pipeline's directory."""

    dir: Path


@dataclass(frozen=True)
class CandidateContext:
    """The repository under test: its directory, and (when known) a content fingerprint."""

    dir: Path
    fingerprint: str | None = None
    git: Mapping[str, str] | None = None


@dataclass
class StepContext:
    """``ctx`` for function steps: ``log(...)``, ``meta(...)``, ``sh(...)`` and run facts."""

    task_id: str
    run_id: str
    cwd: Path
    env: dict[str, str]
    root: RootContext
    candidate: CandidateContext
    source: Any = None
    _log: Callable[[str], None] = field(default=lambda _text: None, repr=False)
    _meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def log(self, message: str) -> None:
        """Append a line to the task's log (redacted like all task output)."""
        self._log(message if message.endswith("\n") else message + "\n")

    def meta(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        """Add JSON-ready metadata to the task's result in the execution record."""
        self._meta.update(values or {})
        self._meta.update(more)

    sh = staticmethod(sh)
