"""The typed shapes of every query answer; JSON Schemas in ``schemas/`` are generated from them.

Field names are snake_case in Python and the spec's camelCase on the wire. Every key is
always present (null when unset), so an answer's shape never depends on the pipeline.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "ContextPack",
    "Explanation",
    "Graph",
    "InputDiff",
    "PipelineMetadata",
    "RunDetails",
    "RunList",
    "TaskInfo",
    "TaskList",
]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class EnvLiteral(_Model):
    kind: Literal["literal"]
    value: str


class EnvSecretRef(_Model):
    kind: Literal["secret"]
    name: str


class EnvVarRef(_Model):
    kind: Literal["var"]
    name: str
    default: str | None
    mapping: dict[str, str] | None


EnvValue = Annotated[EnvLiteral | EnvSecretRef | EnvVarRef, Field(discriminator="kind")]


class ShellStep(_Model):
    kind: Literal["shell"]
    command: str


class DeferredShellStep(_Model):
    """A deferred shell step: described by its callback, which is never called to describe it."""

    kind: Literal["deferredShell"]
    callable: str
    location: str | None


class FunctionStep(_Model):
    kind: Literal["function"]
    callable: str
    location: str | None
    is_async: bool = Field(alias="async")


class AgentStep(_Model):
    kind: Literal["agent"]
    use: EnvValue
    prompt: str
    stdout_to: str | None


Step = Annotated[
    ShellStep | DeferredShellStep | FunctionStep | AgentStep, Field(discriminator="kind")
]


class TaskCacheInfo(_Model):
    ref: str
    ttl_ms: int | None


class RetryInfo(_Model):
    attempts: int
    delay_ms: int


class RequiresInfo(_Model):
    tools: list[str]
    secrets: list[str]
    runtime: dict[str, str]


class TaskInfo(_Model):
    """A task as normalized: id, resolved dependencies, inputs, cache, retry, steps."""

    id: str
    name: str
    group: str | None
    description: str | None
    depends_on: list[str]
    inputs: list[str]
    resolved_inputs: list[str]
    outputs: list[str]
    cache: TaskCacheInfo | None
    retry: RetryInfo
    timeout_ms: int | None
    requires: RequiresInfo
    env: dict[str, EnvValue]
    steps: list[Step]
    defaults_applied: list[str]
    declared_at: str


class TaskDefaultInfo(_Model):
    depends_on: list[str] | None
    inputs: list[str] | None
    outputs: list[str] | None
    cache: TaskCacheInfo | Literal[False] | None
    retry: RetryInfo | None
    timeout_ms: int | None
    requires: RequiresInfo | None
    env: dict[str, EnvValue] | None


class EnvironmentInfo(_Model):
    name: str
    url: str | None


class JobRequires(_Model):
    provenance: bool


class GithubJobInfo(_Model):
    permissions: dict[str, Literal["read", "write", "none"]]
    runs_on: list[str]
    timeout_minutes: int | None
    concurrency: str | None
    condition: str | None = Field(alias="if")


class JobInfo(_Model):
    id: str
    description: str | None
    targets: list[str]
    triggers: list[str]
    environment: EnvironmentInfo | None
    requires: JobRequires
    env: dict[str, EnvValue]
    github: GithubJobInfo | None
    mode: Literal["manual", "ci"] | None
    execution: str | None


class FileStoreInfo(_Model):
    kind: Literal["file"]
    root: str
    ttl_ms: int | None


class MemoryStoreInfo(_Model):
    kind: Literal["memory"]
    ttl_ms: int | None


class RedisStoreInfo(_Model):
    kind: Literal["redis"]
    url: EnvValue
    ttl_ms: int | None
    max_entry_bytes: int | None
    prefix: str


class CacheInfo(_Model):
    default: str
    stores: dict[
        str,
        Annotated[FileStoreInfo | MemoryStoreInfo | RedisStoreInfo, Field(discriminator="kind")],
    ]


class ManualTriggerInfo(_Model):
    kind: Literal["manual"]


class GithubTriggerInfo(_Model):
    kind: Literal["github"]
    events: list[str]
    branches: list[str]


class CronTriggerInfo(_Model):
    kind: Literal["cron"]
    cron: str


TriggerInfo = Annotated[
    ManualTriggerInfo | GithubTriggerInfo | CronTriggerInfo, Field(discriminator="kind")
]


class SyncGithubInfo(_Model):
    workflow: str
    lock: str
    python_version: str
    cache: bool


class SyncTargetInfo(_Model):
    kind: Literal["package", "path"]
    ref: str


class SyncTasksInfo(_Model):
    prefix: str
    runners: list[Literal["package", "deno"]]
    targets: list[SyncTargetInfo]
    jobs: list[str] | None
    tasks: list[str]
    scripts: dict[str, str]


class SyncInfo(_Model):
    github: SyncGithubInfo | None
    tasks: SyncTasksInfo | None


class PathSourceInfo(_Model):
    kind: Literal["path"]
    path: str
    writable: bool
    pipeline: str | None
    prepare: list[Step]


class GitSourceInfo(_Model):
    kind: Literal["git"]
    url: str
    ref: str
    pipeline: str | None
    prepare: list[Step]


class LimaSandboxInfo(_Model):
    kind: Literal["lima"]
    vm: str


class DockerSandboxInfo(_Model):
    kind: Literal["docker"]
    image: str
    cwd: str | None


class VolumeInfo(_Model):
    source: str
    target: str


class ContainerSandboxInfo(_Model):
    kind: Literal["container"]
    image: str
    workdir: str | None
    volumes: list[VolumeInfo]


class ExecutionInfo(_Model):
    kind: Literal["local", "github"]
    sandbox: str | None
    provider: Literal["auto", "docker", "apple-container", "lima"]
    runs_on: list[str]


class AgentProfileInfo(_Model):
    """A CLI adapter (``command``) or an API backend (``api``), and the model."""

    command: list[str]
    model: EnvValue
    api: Literal["anthropic"] | None
    max_tokens: int | None


class AllowAction(_Model):
    kind: Literal["allow"]


class DenyAction(_Model):
    kind: Literal["deny"]


class MockAction(_Model):
    kind: Literal["mock"]
    code: int
    stdout: str
    stderr: str


class RequireEnvironmentAction(_Model):
    kind: Literal["requireEnvironment"]
    environments: list[str]


Action = Annotated[
    AllowAction | DenyAction | MockAction | RequireEnvironmentAction, Field(discriminator="kind")
]


class CommandRuleInfo(_Model):
    match: Literal["prefix", "exact"]
    argv: list[str]
    action: Action


class CommandOutputInfo(_Model):
    max_bytes: int | None
    redact_secrets: bool


class CommandPolicyInfo(_Model):
    rules: list[CommandRuleInfo]
    fallback: Action
    record: bool
    output: CommandOutputInfo


class SourcePipelineInfo(_Model):
    """A source's own pipeline, when it is already on disk."""

    available: bool
    reason: str | None
    error: str | None
    metadata: PipelineMetadata | None


class PipelineMetadata(_Model):
    """Everything the pipeline declares, normalized. Reading it runs nothing."""

    schema_version: Literal[1]
    pipeline_name: str
    root: str | None
    config_path: str | None
    env: dict[str, EnvValue]
    cache: CacheInfo
    named_inputs: dict[str, list[str]]
    task_defaults: dict[str, TaskDefaultInfo]
    triggers: dict[str, TriggerInfo]
    sync: SyncInfo
    sources: dict[str, Annotated[PathSourceInfo | GitSourceInfo, Field(discriminator="kind")]]
    tasks: list[TaskInfo]
    jobs: list[JobInfo]
    sandboxes: dict[
        str,
        Annotated[
            LimaSandboxInfo | DockerSandboxInfo | ContainerSandboxInfo,
            Field(discriminator="kind"),
        ],
    ]
    execution: dict[str, ExecutionInfo]
    agents: dict[str, AgentProfileInfo]
    commands: CommandPolicyInfo | None
    source_pipelines: dict[str, SourcePipelineInfo] | None


class QueryFilter(_Model):
    prefix: str | None
    job: str | None


class TaskLine(_Model):
    id: str
    description: str | None
    depends_on: list[str]
    cache: str | None
    outputs: list[str]
    jobs: list[str]


class TaskList(_Model):
    """Tasks (optionally filtered by id prefix or job) with the jobs that reach each.

    A page at a time: ``truncated`` says more remain, ``nextOffset`` and ``hint`` how to get them.
    """

    pipeline_name: str
    filter: QueryFilter
    total: int
    offset: int
    limit: int
    truncated: bool
    next_offset: int | None
    hint: str | None
    tasks: list[TaskLine]


class GraphNode(_Model):
    id: str
    kind: Literal["task", "source"]
    description: str | None


class GraphEdge(_Model):
    """``from`` runs before ``to``."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")


class Graph(_Model):
    """Task nodes (a page at a time, as for task lists) and the edges among them."""

    pipeline_name: str
    filter: QueryFilter
    total: int
    offset: int
    limit: int
    truncated: bool
    next_offset: int | None
    hint: str | None
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class DirectAndTransitive(_Model):
    direct: list[str]
    transitive: list[str]


class Explanation(_Model):
    """One task, resolved: config, dependencies, dependents, named inputs, jobs reaching it."""

    pipeline_name: str
    task: TaskInfo
    dependencies: DirectAndTransitive
    dependents: DirectAndTransitive
    named_inputs: dict[str, list[str]]
    agent_models: dict[str, EnvValue]
    jobs: list[str]


SourcePipelineInfo.model_rebuild()


class RunSummary(_Model):
    """One run in a list; ``error`` says why a record could not be read (the rest is null)."""

    id: str
    job_id: str | None
    pipeline_name: str | None
    status: str | None
    started_at: str | None
    finished_at: str | None
    interrupted: str | None
    task_counts: dict[str, int]
    cached_tasks: int
    error: str | None


class RunList(_Model):
    """Runs newest first. Pass ``nextCursor`` back as the cursor for the next page."""

    total: int
    runs: list[RunSummary]
    next_cursor: str | None


class LogTail(_Model):
    """The last bytes of one stored (redacted) task log; ``bytes`` is the stored size."""

    text: str
    bytes: int
    truncated: bool


class TaskLogTails(_Model):
    stdout: LogTail
    stderr: LogTail


class RunDetails(_Model):
    """A run: its execution record as stored, capped log tails, and failure context packs."""

    run_id: str
    record: dict[str, Any]
    logs: dict[str, TaskLogTails]
    context_packs: dict[str, dict[str, Any]]


class DiffPath(_Model):
    path: str
    digest: str


class ChangedPath(_Model):
    path: str
    before: str
    after: str


class BaselineInfo(_Model):
    key: str
    ref: str
    updated_at: float | None


class InputDiff(_Model):
    """A task's inputs now against the inputs of its last passing cache entry (digests only)."""

    pipeline_name: str
    task_id: str
    baseline_missing: bool
    reason: str | None
    baseline: BaselineInfo | None
    added: list[DiffPath]
    removed: list[DiffPath]
    changed: list[ChangedPath]
    unchanged: int


class PackError(_Model):
    code: str
    message: str


class PackLogTail(_Model):
    """The end of the failed task's (redacted) output: at most 4 KiB for both streams."""

    stdout: str
    stderr: str
    truncated: bool


class Reproduce(_Model):
    """The command that reruns the failed task, and the names of the env vars it needs."""

    command: str
    cwd: str
    env: list[str]


class OmittedPaths(_Model):
    added: int
    removed: int
    changed: int


class PackInputs(_Model):
    """Input diff against the last passing cache entry; lists may be cut to fit the pack."""

    baseline_missing: bool
    reason: str | None
    baseline: BaselineInfo | None
    added: list[DiffPath]
    removed: list[DiffPath]
    changed: list[ChangedPath]
    unchanged: int
    omitted: OmittedPaths


class ContextPack(_Model):
    """Everything an agent needs to fix one failed task, under 8 KiB."""

    schema_version: Literal[1]
    run_id: str
    job_id: str
    pipeline_name: str
    task_id: str
    error: PackError | None
    exit_code: int | None
    attempts: int
    log_tail: PackLogTail
    reproduce: Reproduce
    inputs: PackInputs
    claims: list[str]
    transcript: str | None = Field(
        default=None,
        description="An agent task's transcript, relative to the run directory "
        "(agents/<task>.jsonl); absent for other tasks.",
    )
