"""``run_job``: run a job in-process, as ``async-pipeline run JOB --format json`` would.

Offered only when the server was started with ``--allow-run``. The runner takes the same
``.async/run.lock``, writes the same record and uses the same cache as a CLI run; task
output goes to the run's log files, never to the server's stdout. A host cancelling the
request (``notifications/cancelled``) cancels the handler's scope (the SDK's default
"interrupt" mode): the runner ends the tasks' process groups, records
``interrupted: "cancelled"`` and finalizes the record, as the CLI does on SIGINT. A server
told to stop interrupts its runs the same way (``_inflight``), recording the signal, and
answers their callers with a JSON-RPC error.

Runs get the server's environment, minus the ``--token-env`` variable: ``serve_http``
takes it out of ``os.environ`` before serving, so no task, function step or log sees it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from async_pipeline.mcp_server._inflight import shutting_down
from async_pipeline.mcp_server._tools import Data, ToolSpec, load_fingerprinted, project_root

if TYPE_CHECKING:
    from mcp.server.session import ServerSession

    from async_pipeline.mcp_server._server import Call
    from async_pipeline.runner.records import TaskResult

__all__ = ["RUN_JOB"]


class _Progress:
    """A runner ``Reporter`` that turns finished tasks into MCP progress notifications.

    The runner reports synchronously; notifications are sent from a separate task so a slow
    host never stalls the scheduler. Without a progress token from the client the SDK's
    ``report_progress`` sends nothing.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        send, receive = anyio.create_memory_object_stream[str](math.inf)
        self._send: MemoryObjectSendStream[str] = send
        self._receive: MemoryObjectReceiveStream[str] = receive

    def task_started(self, task_id: str) -> None:
        """Progress counts finished tasks only; starting one is not progress."""

    def task_output(self, task_id: str, stream: str, data: bytes) -> None:
        """Task output stays in the task's log files; it is never relayed to the host."""

    def task_finished(self, result: TaskResult) -> None:
        cached = " (cached)" if result.cache_hit else ""
        self._send.send_nowait(f"{result.id} {result.status}{cached}")

    def close(self) -> None:
        self._send.close()

    async def pump(self, session: ServerSession) -> None:
        done = 0
        async with self._receive:
            async for message in self._receive:
                done += 1
                try:
                    await session.report_progress(done, self.total, message)
                except Exception:
                    # A host that went away must not take the run (and its record) with it.
                    return


async def _run_job(call: Call, args: Mapping[str, Any]) -> Data:
    from async_pipeline.core import graph
    from async_pipeline.query._data import check_job
    from async_pipeline.runner.api import StopReason, execute_job
    from async_pipeline.runner.records import new_run_id
    from async_pipeline.runner.stamp import Preflight

    pipeline, fingerprint = load_fingerprinted(call)
    config = pipeline.config_path
    assert config is not None  # set by every load from a file
    job_id: str = args["job"]
    check_job(pipeline, job_id)
    progress = _Progress(
        len(graph.transitive_dependencies(pipeline, pipeline.jobs[job_id].targets))
    )
    concurrency = args.get("concurrency")
    # A cancelled request leaves the reason unset ("cancelled"); a stopping server sets it.
    stop = StopReason()
    with call.options.runs.track(stop) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(progress.pump, call.request.session)
            try:
                record = await execute_job(
                    pipeline,
                    id=job_id,
                    concurrency=None if concurrency is None else int(concurrency),
                    force=bool(args.get("force", False)),
                    cwd=project_root(pipeline, call.options.cwd),
                    reporter=progress,
                    stop=stop,
                    # Checked against the job stamp under the run lock, and leaves the next one.
                    preflight=Preflight(new_run_id(), Path(config), fingerprint=fingerprint),
                )
            finally:
                # Let the pump drain the last notifications, then end with the run.
                progress.close()
    if scope.cancelled_caught:
        # Only a stopping server cancels this scope; the record says so, and where it is.
        run = stop.record
        data = None if run is None else {"runId": run.id, "interrupted": run.interrupted}
        raise shutting_down("the run was interrupted and its record finalized", data)
    return record.to_json()


RUN_JOB = ToolSpec(
    name="run_job",
    title="Run a job",
    description=(
        "Run a job of the pipeline: its target tasks and everything they depend on, exactly "
        "like `async-pipeline run JOB --format json`. Executes commands on this machine, "
        "writes a run record under .async/runs/ and uses the task cache ('force' ignores "
        "it). Returns the execution record (status, and per task: status, attempts, cache "
        "hit, timings, exit code, error, log paths). Fails with ASYNC_PIPELINE_RUN_ACTIVE "
        "when another run of this project is in progress. Sends progress notifications as "
        "tasks finish when the request carries a progress token; cancelling the request "
        "stops the run's tasks and finalizes its record. Inspect failures afterwards with "
        "read_run."
    ),
    properties={
        "job": {"type": "string", "minLength": 1, "maxLength": 1024, "description": "Job id."},
        "concurrency": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1024,
            "description": "Tasks to run at once (default: the number of cores).",
        },
        "force": {"type": "boolean", "description": "Ignore cached results and run every task."},
    },
    required=("job",),
    output_model="async_pipeline.runner.models:ExecutionRecord",
    handler=_run_job,
    read_only=False,
)
