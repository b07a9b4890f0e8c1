"""async-pipeline: declare tasks and jobs in ``pipeline.py``; inspect and run them.

This module is the authoring API. Everything here only declares: importing a pipeline,
calling ``define_pipeline`` or reading its metadata never runs anything.
"""

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
