"""Plan and execute a job's task graph.

Ready tasks start in dependency order, up to ``concurrency`` at a time. After the first
failure no new task starts; running tasks finish, and tasks never started are recorded
as ``skipped``. A failed task is a result with a status, never an exception.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import orjson

from async_pipeline.agents.resolve import agent_identity, resolve_agent
from async_pipeline.agents.step import run_agent_step
from async_pipeline.core.commands import CommandPolicy
from async_pipeline.core.model import Pipeline, Task
from async_pipeline.core.steps import AgentStep, DeferredShell, FunctionStep, Shell
from async_pipeline.errors import PipelineError
from async_pipeline.redaction import Redactor
from async_pipeline.runner._stdio import routed_stdio, step_output
from async_pipeline.runner.cache.engine import CacheEngine, Prepared
from async_pipeline.runner.cache.store import Entry
from async_pipeline.runner.context import CandidateContext, RootContext, StepContext
from async_pipeline.runner.context_pack import build_pack, write_pack
from async_pipeline.runner.executor import TIMEOUT_EXIT_CODE, CommandExecutor
from async_pipeline.runner.logs import TaskOutput, log_refs
from async_pipeline.runner.records import TaskResult, now_iso
from async_pipeline.runner.stamp import record_proven

__all__ = ["Reporter", "Scheduler", "TaskPlan"]


class Reporter(Protocol):
    """Receives progress: the CLI's live view and line output implement it."""

    def task_started(self, task_id: str) -> None: ...

    def task_finished(self, result: TaskResult) -> None: ...

    def task_output(self, task_id: str, stream: str, data: bytes) -> None: ...


@dataclass
class TaskPlan:
    """What a task needs to run, resolved before the run starts."""

    task: Task
    env: dict[str, str]
    cwd: Path
    deps: set[str] = field(default_factory=set)
    declared_env: dict[str, str] = field(default_factory=dict)
    secret_keys: set[str] = field(default_factory=set)


@dataclass
class _Outcome:
    exit_code: int | None = 0
    error: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Scheduler:
    def __init__(
        self,
        pipeline: Pipeline,
        plans: Mapping[str, TaskPlan],
        results: Mapping[str, TaskResult],
        *,
        run_id: str,
        root: Path,
        logs_dir: Path,
        executor: CommandExecutor,
        redactor: Redactor,
        concurrency: int,
        max_log_bytes: int,
        reporter: Reporter | None,
        echo: bool,
        cache: CacheEngine | None = None,
        job_id: str = "",
        policy: CommandPolicy | None = None,
        command_decisions: list[dict[str, Any]] | None = None,
        proven: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        # Keys are needed only by cached tasks and the tasks they depend on (whose keys
        # feed theirs); computing them for the rest would hash inputs for nothing.
        self.pipeline = pipeline
        self.plans = plans
        self.results = results
        self.run_id = run_id
        self.root = root
        self.logs_dir = logs_dir
        self.executor = executor
        self.redactor = redactor
        self.concurrency = max(1, concurrency)
        self.max_log_bytes = max_log_bytes
        self.reporter = reporter
        self.echo = echo
        self.cache = cache
        self.job_id = job_id
        self.policy = policy
        self.command_decisions = command_decisions if command_decisions is not None else []
        self.keyed = _keyed(plans)
        self.failed = False
        # Tasks the job stamp proved up to date (runner.stamp): hits without key or lookup.
        self.proven = proven or {}

    async def execute(self) -> None:
        with routed_stdio():
            await self._execute()

    async def _execute(self) -> None:
        waiting = {t: set(p.deps) for t, p in self.plans.items()}
        dependents: dict[str, list[str]] = {t: [] for t in self.plans}
        for task_id, plan in self.plans.items():
            for dep in plan.deps:
                dependents[dep].append(task_id)
        # Tasks the job stamp proved up to date are recorded here and now, dependencies
        # first: each is a few assignments, not worth a scheduled task of its own.
        settled = deque(t for t, deps in waiting.items() if not deps and t in self.proven)
        while settled:
            task_id = settled.popleft()
            if not self._record_proven(self.plans[task_id], self.proven[task_id]):
                continue  # its stored logs are gone: it runs the usual way below
            del waiting[task_id]
            for child in dependents[task_id]:
                waiting[child].discard(task_id)
                if not waiting[child] and child in self.proven:
                    settled.append(child)
        ready = deque(t for t, deps in waiting.items() if not deps)
        running = 0

        async with anyio.create_task_group() as group:

            def launch() -> None:
                nonlocal running
                while ready and running < self.concurrency and not self.failed:
                    running += 1
                    group.start_soon(run_one, ready.popleft())

            async def run_one(task_id: str) -> None:
                nonlocal running
                try:
                    passed = await self._run_task(self.plans[task_id])
                finally:
                    running -= 1
                if not passed:
                    self.failed = True
                else:
                    for child in dependents[task_id]:
                        waiting[child].discard(task_id)
                        if not waiting[child]:
                            ready.append(child)
                launch()

            launch()
        for result in self.results.values():
            if result.status == "pending":
                result.status = "skipped"

    async def _run_task(self, plan: TaskPlan) -> bool:
        task = plan.task
        result = self.results[task.id]
        result.status = "running"
        result.started_at = now_iso()
        started = time.monotonic()
        if self.reporter:
            self.reporter.task_started(task.id)
        echo = self._echo_for(task.id) if (self.echo or self.reporter) else None
        output = TaskOutput(self.redactor, self.max_log_bytes, echo)
        prepared: Prepared | None = None
        outcome = _Outcome()
        try:
            if self.cache is not None and task.id in self.keyed:
                try:
                    prepared = self._prepare(plan)
                except PipelineError as exc:  # e.g. an agent profile that resolves to nothing
                    outcome = _Outcome(None, {"code": exc.code, "message": exc.message})
                else:
                    result.cache_key = prepared.key
                    entry = self.cache.lookup(prepared)
                    if entry is not None:
                        self._replay(entry, result, output)
            if outcome.ok and not result.cache_hit:
                outcome = await self._requirements(plan)
                if outcome.ok:
                    outcome = await self._attempts(plan, result, output)
        except BaseException:
            result.status = "cancelled"
            result.error = {
                "code": "ASYNC_PIPELINE_RUN_INTERRUPTED",
                "message": "the run was stopped",
            }
            raise
        finally:
            result.finished_at = now_iso()
            result.duration_ms = int((time.monotonic() - started) * 1000)
            result.metadata = self._json_safe(result.metadata)
            logs = output.store(self.logs_dir, task.id)
            result.logs = log_refs(task.id, logs)
        result.exit_code = outcome.exit_code
        result.error = None if outcome.error is None else self._redacted(outcome.error)
        result.status = "passed" if outcome.ok else "failed"
        if not outcome.ok:
            self._context_pack(task, result, b"".join(logs["stdout"]), b"".join(logs["stderr"]))
        if outcome.ok and prepared is not None and self.cache is not None and not result.cache_hit:
            self.cache.save(
                prepared,
                {"exitCode": 0, "durationMs": result.duration_ms, "metadata": result.metadata},
                b"".join(logs["stdout"]),
                b"".join(logs["stderr"]),
            )
        if self.reporter:
            self.reporter.task_finished(result)
        return outcome.ok

    def _context_pack(self, task: Task, result: TaskResult, stdout: bytes, stderr: bytes) -> None:
        """Leave what an agent needs to fix this failure next to the run's record."""
        pack = build_pack(
            run_id=self.run_id,
            job_id=self.job_id,
            pipeline=self.pipeline,
            task=task,
            result=result,
            stdout=stdout,
            stderr=stderr,
            root=self.root,
            stat_cache=self.cache.stat_cache if self.cache is not None else None,
        )
        redacted = self.redactor.redact_json(pack)
        write_pack(self.logs_dir.parent, task.id, redacted if isinstance(redacted, dict) else pack)

    def _prepare(self, plan: TaskPlan) -> Prepared:
        assert self.cache is not None
        dependency_keys = {
            dep: key for dep in sorted(plan.deps) if (key := self.results[dep].cache_key)
        }
        agents = self.pipeline.agents
        return self.cache.prepare(
            plan.task,
            declared_env=plan.declared_env,
            secret_keys=plan.secret_keys,
            dependency_keys=dependency_keys,
            agent_identity=lambda step: agent_identity(step, plan.env, agents),
        )

    def _replay(self, entry: Entry, result: TaskResult, output: TaskOutput) -> None:
        """A hit: the stored logs become this run's, the task is recorded as passed from cache."""
        output.stdout(entry.stdout)
        output.stderr(entry.stderr)
        result.cache_hit = True
        metadata = entry.result.get("metadata")
        result.metadata = dict(metadata) if isinstance(metadata, dict) else {}

    def _record_proven(self, plan: TaskPlan, note: Mapping[str, Any]) -> bool:
        """Record a task the job stamp proved up to date (runner.stamp.record_proven).
        False (nothing recorded) if its stored logs can no longer be read."""
        logs = None
        if any(note["logs"]):
            entry = self.cache.stored_entry(plan.task, note["key"]) if self.cache else None
            if entry is None:
                return False
            logs = (entry.stdout, entry.stderr)
        record_proven(
            self.results[plan.task.id],
            note,
            logs,
            logs_dir=self.logs_dir,
            redactor=self.redactor,
            max_log_bytes=self.max_log_bytes,
            reporter=self.reporter,
        )
        return True

    def _json_safe(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Metadata as redacted JSON-ready data, whatever a step passed to ``ctx.meta``."""
        if not metadata:
            return {}
        try:
            data = orjson.dumps(metadata, default=str, option=orjson.OPT_NON_STR_KEYS)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            # Integers past 64 bits, keys orjson cannot name, cycles: as text, by hand.
            data = orjson.dumps(_plain(metadata, set()))
        plain = orjson.loads(data)
        redacted = self.redactor.redact_json(plain)
        return redacted if isinstance(redacted, dict) else {}

    def _echo_for(self, task_id: str) -> Callable[[str, bytes], None]:
        def echo(stream: str, data: bytes) -> None:
            if self.reporter:
                self.reporter.task_output(task_id, stream, data)

        return echo

    def _redacted(self, error: dict[str, str]) -> dict[str, str]:
        return {k: self.redactor.redact_text(v) for k, v in error.items()}

    async def _requirements(self, plan: TaskPlan) -> _Outcome:
        for tool in plan.task.requires.tools:
            if not await self.executor.check_tool(tool, env=plan.env):
                return _Outcome(
                    None,
                    {
                        "code": "ASYNC_PIPELINE_TOOL_MISSING",
                        "message": f"task {plan.task.id} requires {tool!r}, which is not on PATH",
                    },
                )
        for name in plan.task.requires.secrets:
            if not plan.env.get(name):
                return _Outcome(
                    None,
                    {
                        "code": "ASYNC_PIPELINE_ENV_MISSING",
                        "message": f"task {plan.task.id} requires {name}, which is not set",
                    },
                )
        return _Outcome()

    async def _attempts(self, plan: TaskPlan, result: TaskResult, output: TaskOutput) -> _Outcome:
        retry = plan.task.retry
        outcome = _Outcome()
        for attempt in range(1, retry.attempts + 1):
            result.attempts = attempt
            if attempt > 1:
                output.stderr(f"[async-pipeline] attempt {attempt} of {retry.attempts}\n".encode())
            started = time.monotonic()
            outcome = await self._attempt(plan, output, result)
            result.attempt_results.append(
                {
                    "attempt": attempt,
                    "exitCode": outcome.exit_code,
                    "durationMs": int((time.monotonic() - started) * 1000),
                    "timedOut": outcome.error is not None
                    and outcome.error["code"] == "ASYNC_PIPELINE_TASK_TIMEOUT",
                }
            )
            if outcome.ok:
                return outcome
            if attempt < retry.attempts and retry.delay_ms:
                await anyio.sleep(retry.delay_ms / 1000)
        return outcome

    async def _attempt(self, plan: TaskPlan, output: TaskOutput, result: TaskResult) -> _Outcome:
        task = plan.task
        deadline = None if task.timeout_ms is None else time.monotonic() + task.timeout_ms / 1000
        ctx = StepContext(
            task_id=task.id,
            run_id=self.run_id,
            cwd=plan.cwd,
            env=dict(plan.env),
            root=RootContext(self.root),
            candidate=CandidateContext(self.root),
            _log=lambda text: output.stdout(text.encode()),
            _meta=result.metadata,
        )
        for index, step in enumerate(task.steps):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining is not None and remaining <= 0:
                return self._timeout(task)
            if isinstance(step, AgentStep):
                outcome = await self._agent(step, plan, output, remaining)
                if not outcome.ok:
                    return outcome
                continue
            if isinstance(step, Shell | DeferredShell):
                outcome = await self._shell(step, ctx, plan, output, remaining)
            else:
                outcome = await self._function(step, task, ctx, output, remaining, index)
            if not outcome.ok:
                return outcome
        return _Outcome()

    async def _agent(
        self, step: AgentStep, plan: TaskPlan, output: TaskOutput, remaining: float | None
    ) -> _Outcome:
        try:
            resolved = resolve_agent(step, plan.env, self.pipeline.agents)
        except PipelineError as exc:
            return _Outcome(None, {"code": exc.code, "message": exc.message})
        agent = await run_agent_step(
            step,
            task=plan.task,
            resolved=resolved,
            run_dir=self.logs_dir.parent,
            cwd=plan.cwd,
            env=plan.env,
            executor=self.executor,
            output=output,
            redactor=self.redactor,
            timeout_ms=None if remaining is None else max(1, int(remaining * 1000)),
            policy=self.policy,
            on_decision=self.command_decisions.append,
            max_log_bytes=self.max_log_bytes,
        )
        if agent.timed_out:
            return self._timeout(plan.task)
        return _Outcome(agent.exit_code, agent.error)

    def _timeout(self, task: Task) -> _Outcome:
        return _Outcome(
            TIMEOUT_EXIT_CODE,
            {
                "code": "ASYNC_PIPELINE_TASK_TIMEOUT",
                "message": f"task {task.id} timed out after {task.timeout_ms} ms",
            },
        )

    async def _shell(
        self,
        step: Shell | DeferredShell,
        ctx: StepContext,
        plan: TaskPlan,
        output: TaskOutput,
        remaining: float | None,
    ) -> _Outcome:
        if isinstance(step, DeferredShell):
            called = await self._guarded(step.callback, plan.task, ctx, output, remaining, "sh")
            if isinstance(called, _Outcome):
                return called
            built = called.value
            if remaining is not None:  # the callback's time counts against the task's
                remaining = max(0.001, remaining - called.seconds)
            if isinstance(built, str):
                built = Shell(built)
            if not isinstance(built, Shell):
                return _Outcome(
                    None,
                    {
                        "code": "ASYNC_PIPELINE_STEP_FAILED",
                        "message": "a deferred sh callback must return sh(...) or a string, got "
                        + type(built).__name__,
                    },
                )
            step = built
        try:
            result = await self.executor.run_shell(
                step.command,
                cwd=plan.cwd,
                env=plan.env,
                task=plan.task,
                timeout_ms=None if remaining is None else max(1, int(remaining * 1000)),
                output=output,
            )
        except PipelineError as exc:
            return _Outcome(None, {"code": exc.code, "message": exc.message})
        except Exception as exc:  # a caller's executor failing is this task's failure
            return _Outcome(
                None,
                {
                    "code": "ASYNC_PIPELINE_STEP_FAILED",
                    "message": f"the command executor failed: {type(exc).__name__}: {exc}",
                },
            )
        if result.timed_out:
            return self._timeout(plan.task)
        if result.exit_code != 0:
            return _Outcome(
                result.exit_code,
                {
                    "code": "ASYNC_PIPELINE_TASK_FAILED",
                    "message": f"command exited with {result.exit_code}: {step.command}",
                },
            )
        return _Outcome(0)

    async def _function(
        self,
        step: FunctionStep,
        task: Task,
        ctx: StepContext,
        output: TaskOutput,
        remaining: float | None,
        index: int,
    ) -> _Outcome:
        called = await self._guarded(step.function, task, ctx, output, remaining, index + 1)
        return called if isinstance(called, _Outcome) else _Outcome(0)

    async def _guarded(
        self,
        fn: Callable[..., Any],
        task: Task,
        ctx: StepContext,
        output: TaskOutput,
        remaining: float | None,
        step: int | str,
    ) -> _Called | _Outcome:
        """Call a step's function (or a deferred sh callback) within the task's time left;
        what it returns, or the outcome that fails the task: a timeout (also one found only
        afterwards, when the function held the event loop past it), or anything it raised.

        Whatever a step raises is its own failure, BaseException subclasses too (SystemExit,
        KeyboardInterrupt from user code, a library's own): only a cancellation of the run
        goes on. The traceback goes to the task's stderr log, redacted like all output.
        """
        started = time.monotonic()
        try:
            with anyio.fail_after(remaining):
                with step_output(output.stdout, output.stderr):
                    value = await _call(fn, ctx, remaining)
        except TimeoutError:
            return self._timeout(task)
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:  # see the docstring
            output.stderr("".join(traceback.format_exception(exc)).encode())
            where = f"step {step}" if isinstance(step, int) else "the deferred sh callback"
            return _Outcome(
                1,
                {
                    "code": "ASYNC_PIPELINE_STEP_FAILED",
                    "message": f"{where} raised {type(exc).__name__}: {exc}",
                },
            )
        seconds = time.monotonic() - started
        if remaining is not None and seconds > remaining:
            return self._timeout(task)
        return _Called(value, seconds)


@dataclass(frozen=True, slots=True)
class _Called:
    """What a step's function returned, and how long it took."""

    value: Any
    seconds: float


def _keyed(plans: Mapping[str, TaskPlan]) -> set[str]:
    """Cached tasks and everything they depend on."""
    keyed: set[str] = set()
    stack = [t for t, plan in plans.items() if plan.task.cache is not None]
    while stack:
        task_id = stack.pop()
        if task_id not in keyed:
            keyed.add(task_id)
            stack.extend(plans[task_id].deps)
    return keyed


async def _call(fn: Callable[..., Any], ctx: StepContext, remaining: float | None) -> Any:
    """Call a user callback: async ones are awaited, sync ones run in a worker thread."""
    if inspect.iscoroutinefunction(inspect.unwrap(fn)):
        return await fn(ctx)
    value = await anyio.to_thread.run_sync(fn, ctx, abandon_on_cancel=True)
    if inspect.isawaitable(value):
        value = await value
    return value


def _plain(value: Any, seen: set[int]) -> Any:
    """``value`` as JSON data: mappings and sequences walked, anything else as text, a
    container met again inside itself as ``"<cycle>"``."""
    if value is None or isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if id(value) in seen:
            return "<cycle>"
        seen = seen | {id(value)}
        if isinstance(value, Mapping):
            return {str(k): _plain(v, seen) for k, v in value.items()}
        return [_plain(v, seen) for v in value]
    return str(value)
