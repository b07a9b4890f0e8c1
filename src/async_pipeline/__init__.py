"""async-pipeline: declare tasks and jobs in ``pipeline.py``; inspect and run them.

This module is the authoring API. Everything here only declares: importing a pipeline,
calling ``define_pipeline`` or reading its metadata never runs anything.

Names are imported on first use, so a command that needs none of them (a warm ``run``
that finds nothing to do) does not pay for importing them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from async_pipeline._lazy import lazy_exports

if TYPE_CHECKING:
    from async_pipeline.cli.inprocess import CliResult, run_pipeline_cli
    from async_pipeline.core.cache import (
        cache,
        define_cache,
        file_cache,
        memory_cache,
        redis_cache,
    )
    from async_pipeline.core.commands import command
    from async_pipeline.core.env import env
    from async_pipeline.core.model import Pipeline
    from async_pipeline.core.normalize import define_pipeline
    from async_pipeline.core.sandboxes import execution, sandbox
    from async_pipeline.core.sources import source
    from async_pipeline.core.steps import agent, depends_on, sh
    from async_pipeline.core.task import job, task
    from async_pipeline.core.triggers import trigger
    from async_pipeline.errors import PipelineError

__version__ = "0.1.0"

_HOMES = {
    "CliResult": "async_pipeline.cli.inprocess",
    "run_pipeline_cli": "async_pipeline.cli.inprocess",
    "cache": "async_pipeline.core.cache",
    "define_cache": "async_pipeline.core.cache",
    "file_cache": "async_pipeline.core.cache",
    "memory_cache": "async_pipeline.core.cache",
    "redis_cache": "async_pipeline.core.cache",
    "command": "async_pipeline.core.commands",
    "env": "async_pipeline.core.env",
    "Pipeline": "async_pipeline.core.model",
    "define_pipeline": "async_pipeline.core.normalize",
    "execution": "async_pipeline.core.sandboxes",
    "sandbox": "async_pipeline.core.sandboxes",
    "source": "async_pipeline.core.sources",
    "agent": "async_pipeline.core.steps",
    "depends_on": "async_pipeline.core.steps",
    "sh": "async_pipeline.core.steps",
    "job": "async_pipeline.core.task",
    "task": "async_pipeline.core.task",
    "trigger": "async_pipeline.core.triggers",
    "PipelineError": "async_pipeline.errors",
}

__all__ = [
    "CliResult",
    "Pipeline",
    "PipelineError",
    "__version__",
    "agent",
    "cache",
    "command",
    "define_cache",
    "define_pipeline",
    "depends_on",
    "env",
    "execution",
    "file_cache",
    "job",
    "memory_cache",
    "redis_cache",
    "run_pipeline_cli",
    "sandbox",
    "sh",
    "source",
    "task",
    "trigger",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
