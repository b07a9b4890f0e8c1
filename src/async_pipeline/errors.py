"""Every error a user can cause, with a stable code.

Hierarchy::

    PipelineError                 base: .code (ASYNC_PIPELINE_*), .message, .path, .hint
    ├── DefinitionError           pipeline declarations that do not validate
    ├── LoadError                 pipeline.py missing, unparsable, or raising while imported
    ├── QueryError                a question about a valid pipeline names something absent
    └── UsageError                a wrong command-line flag or argument

Codes are part of the public contract: callers (and tests) match on ``error.code``,
never on message text. Every code is listed in ``CODES`` with what it means and what to
do about it; ``docs/errors.md`` documents each one and a test keeps the two in step.
"""

from __future__ import annotations

__all__ = [
    "CODES",
    "DefinitionError",
    "LoadError",
    "PipelineError",
    "QueryError",
    "UsageError",
    "sole_error",
]

CODES: dict[str, str] = {
    "ASYNC_PIPELINE_UNKNOWN_FIELD": (
        "A pipeline, task, task default, job, job github config, github permission, agent "
        "profile or helper was given a field it does not have, or run_job/arun_job an option "
        "it does not take. The message names the full path and the nearest valid field."
    ),
    "ASYNC_PIPELINE_TASK_ARGUMENT_CONFLICT": (
        "task() was given both run= and positional steps. Use one or the other."
    ),
    "ASYNC_PIPELINE_INVALID_VALUE": (
        "A field has the wrong type or an unusable value. The message names the path and "
        "what was expected."
    ),
    "ASYNC_PIPELINE_INVALID_DURATION": (
        "A timeout or delay is neither milliseconds nor a duration such as 500ms, 30s, 5m, "
        "1h, or it is not positive (a retry delay may be 0)."
    ),
    "ASYNC_PIPELINE_INVALID_PATH": (
        "A path declared in the pipeline is absolute or climbs out of the repository with "
        "'..'; or an output points into .async/ or .git/; or a file store's root is not a "
        "directory of its own; or a generated file's path is a glob, a directory, or the "
        "other generated file's; or a write would leave the repository through a symlink."
    ),
    "ASYNC_PIPELINE_UNKNOWN_TASK": (
        "A dependency, job target or query names a task that does not exist. The message "
        "names both ends and the nearest task id."
    ),
    "ASYNC_PIPELINE_UNKNOWN_JOB": "A query or command names a job that does not exist.",
    "ASYNC_PIPELINE_UNKNOWN_TRIGGER": "A job lists a trigger id that is not declared in triggers.",
    "ASYNC_PIPELINE_UNKNOWN_SOURCE": (
        "A '<source>:<task>' reference names a source that is not declared in sources."
    ),
    "ASYNC_PIPELINE_UNKNOWN_SANDBOX": "An execution profile names an undeclared sandbox.",
    "ASYNC_PIPELINE_UNKNOWN_EXECUTION": "A job names an undeclared execution profile.",
    "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE": (
        "A cache ref such as 'file:local' names a store that the cache registry does not declare."
    ),
    "ASYNC_PIPELINE_AGENT_UNKNOWN": "An agent step uses a profile that is not declared in agents.",
    "ASYNC_PIPELINE_DEPENDENCY_CYCLE": (
        "Tasks depend on each other in a cycle; the message shows it as a -> b -> a."
    ),
    "ASYNC_PIPELINE_DUPLICATE_TASK": (
        "Two declarations produce the same task id after groups are flattened."
    ),
    "ASYNC_PIPELINE_CONFIG_NOT_FOUND": (
        "No pipeline.py in the working directory, or the --config path does not exist."
    ),
    "ASYNC_PIPELINE_CONFIG_SYNTAX": (
        "pipeline.py is not valid Python; the message points at the line."
    ),
    "ASYNC_PIPELINE_CONFIG_ERROR": (
        "pipeline.py raised an exception while it was imported; the message points at the line."
    ),
    "ASYNC_PIPELINE_CONFIG_NO_PIPELINE": (
        "pipeline.py defines no pipeline: assign define_pipeline(...) to a module-level 'pipeline'."
    ),
    "ASYNC_PIPELINE_CONFIG_AMBIGUOUS": (
        "pipeline.py defines several pipelines and none is named 'pipeline'."
    ),
    "ASYNC_PIPELINE_RUN_ACTIVE": (
        "Another run of this project holds .async/run.lock; the message names its pid and run id."
    ),
    "ASYNC_PIPELINE_ENV_MISSING": (
        "A secret or variable the run needs is not set; the message names the env key and its "
        "source variable, never a value."
    ),
    "ASYNC_PIPELINE_ENV_UNMAPPED": (
        "An env.var(...) with a mapping read a value that is not one of the mapping's keys."
    ),
    "ASYNC_PIPELINE_TASK_FAILED": (
        "A task's command exited with a non-zero code (in a task result)."
    ),
    "ASYNC_PIPELINE_TASK_TIMEOUT": (
        "A task ran past its timeout; its processes were ended and exit code 124 recorded."
    ),
    "ASYNC_PIPELINE_TOOL_MISSING": "A tool in requires.tools is not on the task's PATH.",
    "ASYNC_PIPELINE_STEP_FAILED": (
        "A function step or deferred sh callback raised, or returned something other than sh(...)."
    ),
    "ASYNC_PIPELINE_AGENT_FAILED": (
        "An agent step's adapter exited non-zero, or its API backend answered with an error."
    ),
    "ASYNC_PIPELINE_COMMAND_DENIED": (
        "The command policy denies a command the tool was asked to start (an agent adapter, or "
        "a CLI call through run_pipeline_cli); it was not started."
    ),
    "ASYNC_PIPELINE_RUN_INTERRUPTED": (
        "The run was stopped (SIGINT, SIGTERM or a closed output pipe) while the task ran."
    ),
    "ASYNC_PIPELINE_SOURCE_UNAVAILABLE": (
        "A job reaches tasks of another repository ('<source>:<task>'), which this version "
        "cannot run yet."
    ),
    "ASYNC_PIPELINE_SANDBOX_UNAVAILABLE": (
        "A run asked for a sandbox or execution profile, which this version cannot run yet."
    ),
    "ASYNC_PIPELINE_UNKNOWN_RUN": (
        "A run id that is not a run under .async/runs (or not shaped like a run id)."
    ),
    "ASYNC_PIPELINE_RUN_UNREADABLE": (
        "A run's execution.json cannot be read or is not a valid record; the message says why."
    ),
    "ASYNC_PIPELINE_SYNC_STALE": (
        "A generated file (GitHub workflow, its lock, or synced package tasks) is missing or "
        "differs from what the pipeline renders; the diff is printed on stdout."
    ),
    "ASYNC_PIPELINE_SYNC_CONFLICT": (
        "Task sync would overwrite a script or Deno task that it does not manage."
    ),
    "ASYNC_PIPELINE_GITHUB_EVENT": (
        "github run found no usable GitHub event: GITHUB_EVENT_NAME is unset, or the file at "
        "GITHUB_EVENT_PATH is missing, unreadable or not a JSON object."
    ),
    "ASYNC_PIPELINE_USAGE": (
        "A command-line flag or argument, a setting, or an argument of the Python API is "
        "missing, unknown or malformed."
    ),
    "ASYNC_PIPELINE_INTERNAL": (
        "An unexpected error inside async-pipeline. Rerun with ASYNC_PIPELINE_DEBUG=1 and report "
        "the traceback."
    ),
}


class PipelineError(Exception):
    """An error with a stable ``code`` that tells the user what to fix."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        path: str | None = None,
        hint: str | None = None,
        location: str | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"undocumented error code {code!r}")
        self.code = code
        self.message = message
        self.path = path
        self.hint = hint
        self.location = location
        super().__init__(code, message)

    def __str__(self) -> str:
        text = self.message
        if self.location:
            text = f"{self.location}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return f"{self.code}: {text}"

    def to_dict(self) -> dict[str, str | None]:
        """The error as JSON-ready data for machine-readable output."""
        return {
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "hint": self.hint,
            "location": self.location,
        }


class DefinitionError(PipelineError):
    """Pipeline declarations that do not validate."""


class LoadError(PipelineError):
    """pipeline.py could not be found, parsed or imported."""


class QueryError(PipelineError):
    """A question about a valid pipeline names something that does not exist."""


class UsageError(PipelineError):
    """A wrong command-line flag or argument."""


def sole_error(exc: BaseException) -> BaseException:
    """The one error ``exc`` holds when it is an exception group (nested groups included)
    of exactly one: an anyio task group wraps even a single failure, which is still the
    caller's error. Otherwise ``exc`` itself."""
    found = exc
    while isinstance(found, BaseExceptionGroup) and len(found.exceptions) == 1:
        found = found.exceptions[0]
    return exc if isinstance(found, BaseExceptionGroup) else found
