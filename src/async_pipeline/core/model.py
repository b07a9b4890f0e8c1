"""The normalized pipeline: validated, flattened, frozen. What the runner and queries read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from async_pipeline.core.cache import CacheRegistry
from async_pipeline.core.commands import CommandPolicy
from async_pipeline.core.env import EnvValue, EnvVar
from async_pipeline.core.sandboxes import ExecutionProfile, Sandbox
from async_pipeline.core.sources import Source
from async_pipeline.core.steps import Step
from async_pipeline.core.triggers import Trigger

__all__ = [
    "AgentProfile",
    "Environment",
    "GithubJobConfig",
    "Job",
    "Pipeline",
    "Requires",
    "Retry",
    "Sync",
    "SyncGithub",
    "SyncTasks",
    "Task",
    "TaskCache",
]


@dataclass(frozen=True, slots=True)
class Retry:
    """``attempts`` in total (``retry=2`` is one retry), ``delay_ms`` between them."""

    attempts: int = 1
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class TaskCache:
    """Where a cached task stores results: a ``<store>:<namespace>`` ref and optional TTL."""

    ref: str
    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Requires:
    tools: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    runtime: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Task:
    """One task after flattening, defaults, directives and named inputs are applied."""

    id: str
    description: str | None = None
    depends_on: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    resolved_inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    cache: TaskCache | None = None
    retry: Retry = Retry()
    timeout_ms: int | None = None
    requires: Requires = Requires()
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    defaults_applied: tuple[str, ...] = ()
    declared_at: str = ""

    @property
    def name(self) -> str:
        return self.id.rsplit(".", 1)[-1]

    @property
    def group(self) -> str | None:
        return self.id.rsplit(".", 1)[0] if "." in self.id else None


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class GithubJobConfig:
    """The generated-workflow escape hatch for one job."""

    permissions: Mapping[str, str] = field(default_factory=dict)
    runs_on: tuple[str, ...] = ()
    timeout_minutes: int | None = None
    concurrency: str | None = None
    condition: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    targets: tuple[str, ...]
    description: str | None = None
    triggers: tuple[str, ...] = ()
    environment: Environment | None = None
    provenance: bool = False
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    github: GithubJobConfig | None = None
    mode: str | None = None
    execution: str | None = None


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """An agent adapter: a CLI's argv prefix, or an ``api`` backend, and the model.

    The model, not the binary location, is the profile's cache identity.
    """

    command: tuple[str, ...]
    model: str | EnvVar
    api: str | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class SyncGithub:
    workflow: str = ".github/workflows/async-pipeline.yml"
    lock: str = ".github/async-pipeline.lock.json"
    python_version: str = "3.11"
    cache: bool = True


@dataclass(frozen=True, slots=True)
class SyncTasks:
    prefix: str = "pipeline"
    runners: tuple[str, ...] = ("package",)
    targets: tuple[tuple[str, str], ...] = ()
    jobs: tuple[str, ...] | None = None
    tasks: tuple[str, ...] = ()
    scripts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sync:
    github: SyncGithub | None = None
    tasks: SyncTasks | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A validated pipeline. Build it with ``define_pipeline``; it is inert data."""

    name: str
    tasks: Mapping[str, Task]
    jobs: Mapping[str, Job]
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    cache: CacheRegistry = field(default_factory=CacheRegistry)
    named_inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    task_defaults: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    triggers: Mapping[str, Trigger] = field(default_factory=dict)
    sync: Sync = Sync()
    sources: Mapping[str, Source] = field(default_factory=dict)
    sandboxes: Mapping[str, Sandbox] = field(default_factory=dict)
    execution: Mapping[str, ExecutionProfile] = field(default_factory=dict)
    agents: Mapping[str, AgentProfile] = field(default_factory=dict)
    commands: CommandPolicy | None = None
    config_path: str | None = None
