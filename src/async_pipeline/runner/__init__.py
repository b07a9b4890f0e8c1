"""Execution: run jobs over the task graph, with records, logs, retries, timeouts and a lock.

Names are imported on first use: the CLI reaches single modules of this package (records,
the lock, job stamps) without starting the whole runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from async_pipeline._lazy import lazy_exports

if TYPE_CHECKING:
    from async_pipeline.runner.api import StopReason, arun_job, run_job
    from async_pipeline.runner.executor import (
        CommandExecutor,
        CommandResult,
        HostExecutor,
        OutputSink,
    )

_HOMES = {
    "StopReason": "async_pipeline.runner.api",
    "arun_job": "async_pipeline.runner.api",
    "run_job": "async_pipeline.runner.api",
    "CommandExecutor": "async_pipeline.runner.executor",
    "CommandResult": "async_pipeline.runner.executor",
    "HostExecutor": "async_pipeline.runner.executor",
    "OutputSink": "async_pipeline.runner.executor",
}

__all__ = [
    "CommandExecutor",
    "CommandResult",
    "HostExecutor",
    "OutputSink",
    "StopReason",
    "arun_job",
    "run_job",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
