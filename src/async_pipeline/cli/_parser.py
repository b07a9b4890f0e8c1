"""The argument parser. Usage mistakes become ``ASYNC_PIPELINE_USAGE`` errors, exit code 1."""

from __future__ import annotations

import argparse
import re
import sys
from contextvars import ContextVar
from typing import IO, TYPE_CHECKING, Any, NoReturn

from async_pipeline.core._validate import nearest
from async_pipeline.errors import UsageError

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

PROG = "async-pipeline"


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")

# Where --help and --version print: argparse writes to sys.stdout; main(stdout=...) sets this
# for the parse (subcommand parsers included) so the text reaches the caller's stream.
_HELP_OUTPUT: ContextVar[IO[str] | None] = ContextVar("_HELP_OUTPUT", default=None)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        hint = f"see `{self.prog} --help`"
        match = _INVALID_CHOICE.search(message)
        if match:
            choices = [c.strip().strip("'") for c in match.group(2).split(",")]
            guess = nearest(match.group(1), choices)
            if guess:
                hint = f'did you mean "{guess}"? ({hint})'
        raise UsageError("ASYNC_PIPELINE_USAGE", f"{self.prog}: {message}", hint=hint)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        output = _HELP_OUTPUT.get()
        super()._print_message(message, output if output and file is sys.stdout else file)

    def parse_args(  # type: ignore[override]  # one form is used: a list in, a namespace out
        self,
        args: list[str] | None = None,
        namespace: None = None,
        *,
        output: IO[str] | None = None,
    ) -> argparse.Namespace:
        """Parse ``args``; ``--help`` and ``--version`` print to ``output`` (default stdout)."""
        token = _HELP_OUTPUT.set(output)
        try:
            parsed, extras = self.parse_known_args(args, namespace)
        finally:
            _HELP_OUTPUT.reset(token)
        if extras:
            # The top parser notices what a subcommand did not take: point at that command.
            command = getattr(parsed, "command", None)
            where = f"{self.prog} {command}" if command else self.prog
            raise UsageError(
                "ASYNC_PIPELINE_USAGE",
                f"{self.prog}: unrecognized arguments: {' '.join(extras)}",
                hint=f"see `{where} --help`",
            )
        return parsed


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="pipeline file to load (default: ./pipeline.py)",
    )
    return common


def _format(parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str) -> None:
    parser.add_argument(
        "--format",
        choices=choices,
        default=default,
        help=f"output format (default: {default})",
    )


def build_parser(version: str) -> _Parser:
    common = _common()
    parser = _Parser(
        prog=PROG,
        parents=[common],
        description=(
            "Declare tasks and jobs in pipeline.py; inspect them here or from an MCP host. "
            "Inspection commands never run anything."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    metadata = commands.add_parser(
        "metadata", parents=[common], help="everything the pipeline declares, normalized"
    )
    _format(metadata, ("json", "text"), "text")
    metadata.add_argument(
        "--include-sources",
        action="store_true",
        help="also load pipelines of sources already on disk (never clones or prepares)",
    )

    listing = commands.add_parser("list", parents=[common], help="list tasks")
    _format(listing, ("json", "text"), "text")
    listing.add_argument("--prefix", metavar="ID", help="only tasks whose id starts with ID")
    listing.add_argument("--job", metavar="JOB", help="only tasks the job runs")
    _paging(listing)

    graph = commands.add_parser("graph", parents=[common], help="the task dependency graph")
    _format(graph, ("text", "json", "dot", "mermaid"), "text")
    graph.add_argument("--job", metavar="JOB", help="only the subgraph the job runs")
    graph.add_argument("--prefix", metavar="ID", help="only tasks whose id starts with ID")
    _paging(graph)

    explain = commands.add_parser(
        "explain", parents=[common], help="one task resolved: config, deps, dependents, jobs"
    )
    explain.add_argument("task", nargs="?", help="task id, e.g. build or claims.report")
    explain.add_argument(
        "--run", metavar="RUN_ID", help="summarize a run's failure context packs instead"
    )
    explain.add_argument(
        "--diff-inputs",
        action="store_true",
        help="what changed in the task's inputs since it last passed (digests, never contents)",
    )
    _format(explain, ("json", "text"), "text")

    runs = commands.add_parser("runs", parents=[common], help="recorded runs, newest first")
    runs.add_argument("--limit", type=_positive, default=20, metavar="N", help="runs per page")
    runs.add_argument("--cursor", metavar="RUN_ID", help="continue after this run (a page's last)")
    _format(runs, ("text", "json"), "text")
    runs_commands = runs.add_subparsers(dest="runs_command", metavar="ACTION", parser_class=_Parser)
    show = runs_commands.add_parser("show", parents=[common], help="one run in detail")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument(
        "--max-log-bytes", type=_non_negative, default=4096, metavar="N", help="log tail size"
    )
    _format(show, ("text", "json"), "text")

    for name, what in (("run", "job"), ("run-task", "task")):
        runner = commands.add_parser(
            name,
            parents=[common],
            help=f"run a {what} and everything it depends on",
        )
        runner.add_argument(what, help=f"{what} id")
        runner.add_argument(
            "--concurrency",
            type=_concurrency,
            metavar="N",
            help="tasks to run at once (default: cores)",
        )
        runner.add_argument("--force", action="store_true", help="ignore cached results")
        runner.add_argument("--echo", action="store_true", help="print task output as it arrives")
        _format(runner, ("text", "json"), "text")

    mcp = commands.add_parser(
        "mcp",
        parents=[common],
        help="serve the pipeline to MCP hosts over stdio (or HTTP with --http)",
    )
    mcp.add_argument(
        "--allow-run", action="store_true", help="also offer run_job (runs commands here)"
    )
    mcp.add_argument(
        "--http",
        metavar="[HOST:]PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (HOST: "
        "127.0.0.1; a non-loopback HOST requires --token-env)",
    )
    mcp.add_argument(
        "--token-env",
        metavar="NAME",
        help="with --http: require `Authorization: Bearer $NAME` on every request "
        "(NAME is then hidden from runs)",
    )

    gc = commands.add_parser("gc", parents=[common], help="prune old run records and cache entries")
    gc.add_argument(
        "--keep",
        type=_non_negative,
        metavar="N",
        help="run records to keep, newest first; 0 keeps them all "
        "(default: ASYNC_PIPELINE_KEEP_RUNS or 50)",
    )
    gc.add_argument(
        "--cache-days",
        type=_non_negative,
        metavar="N",
        help="remove cache entries unused for N days",
    )
    _format(gc, ("text", "json"), "text")

    doctor = commands.add_parser(
        "doctor", parents=[common], help="check the project is ready to run (exit 1 on errors)"
    )
    _format(doctor, ("text", "json"), "text")

    cache = commands.add_parser("cache", parents=[common], help="manage the local task cache")
    cache_commands = cache.add_subparsers(
        dest="cache_command", metavar="ACTION", parser_class=_Parser
    )
    cache_commands.required = True
    clear = cache_commands.add_parser(
        "clear", parents=[common], help="remove every local cache entry and baseline"
    )
    _format(clear, ("text", "json"), "text")
    _sync_commands(commands, common)
    return parser


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workflow", metavar="PATH", help="workflow file to write or check")
    parser.add_argument("--lock", metavar="PATH", help="lock file to write or check")


def _sync_actions(
    parent: argparse.ArgumentParser, common: _Parser, dest: str, paths: bool = False
) -> None:
    actions = parent.add_subparsers(dest=dest, metavar="ACTION", parser_class=_Parser)
    actions.required = True
    for name, what in (
        ("list", "the generated files and whether each is current"),
        ("generate", "write the generated files"),
        ("check", "exit 1 with a diff when a generated file is stale or missing"),
    ):
        action = actions.add_parser(name, parents=[common], help=what)
        if name == "list":
            _format(action, ("text", "json"), "text")
        if paths:
            _paths(action)


def _sync_commands(commands: Any, common: _Parser) -> None:
    sync = commands.add_parser(
        "sync", parents=[common], help="keep generated files (GitHub workflow, tasks) current"
    )
    targets = sync.add_subparsers(dest="sync_command", metavar="TARGET", parser_class=_Parser)
    targets.required = True
    for name, what in (
        ("list", "every generated file and whether it is current"),
        ("generate", "write every generated file"),
        ("check", "exit 1 with a diff when a generated file is stale or missing"),
    ):
        action = targets.add_parser(name, parents=[common], help=what)
        if name == "list":
            _format(action, ("text", "json"), "text")
    github = targets.add_parser("github", parents=[common], help="the GitHub Actions workflow")
    _sync_actions(github, common, "sync_action", paths=True)
    tasks = targets.add_parser("tasks", parents=[common], help="package.json / deno.json tasks")
    _sync_actions(tasks, common, "sync_action")

    gh = commands.add_parser("github", parents=[common], help="the generated GitHub workflow")
    gh_commands = gh.add_subparsers(dest="github_command", metavar="ACTION", parser_class=_Parser)
    gh_commands.required = True
    _paths(gh_commands.add_parser("generate", parents=[common], help="write workflow and lock"))
    _paths(gh_commands.add_parser("check", parents=[common], help="exit 1 when they are stale"))
    run = gh_commands.add_parser(
        "run", parents=[common], help="run the jobs whose triggers match this GitHub event"
    )
    run.add_argument("--job", metavar="JOB", help="only this job (on workflow_dispatch: any job)")
    run.add_argument(
        "--concurrency",
        type=_concurrency,
        metavar="N",
        help="tasks to run at once (default: cores)",
    )


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=_non_negative,
        default=200,
        metavar="N",
        help="tasks per page (default 200; 0: all of them)",
    )
    parser.add_argument(
        "--offset", type=_non_negative, default=0, metavar="N", help="skip the first N tasks"
    )


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _concurrency(text: str) -> int:
    from async_pipeline.runner.records import MAX_CONCURRENCY

    value = _positive(text)
    if value > MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_CONCURRENCY}, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return value
