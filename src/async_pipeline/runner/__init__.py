"""Execution: run jobs over the task graph, with records, logs, retries, timeouts and a lock."""

from async_pipeline.runner.api import StopReason, arun_job, run_job
from async_pipeline.runner.executor import CommandExecutor, CommandResult, HostExecutor, OutputSink

__all__ = [
    "CommandExecutor",
    "CommandResult",
    "HostExecutor",
    "OutputSink",
    "StopReason",
    "arun_job",
    "run_job",
]
