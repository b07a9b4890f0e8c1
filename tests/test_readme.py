"""The README's set-up commands and tour commands are true."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from tests.conftest import EXAMPLES, REPO, run_cli_process

README = (REPO / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {title}\n(.*?)(?=^## )", README, re.MULTILINE | re.DOTALL)
    assert match, title
    return match.group(1)


def _blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, re.DOTALL)]


def test_setup_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    blocks = _blocks(_section("Set up"))
    assert len(blocks) == 2
    assert all(len(block.splitlines()) == 1 for block in blocks)
    run_main, run_tests = blocks
    assert "pip install" in run_main and "examples/quickstart" in run_main
    assert run_main.endswith(" run verify")
    assert run_tests == "bash scripts/test.sh"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec bash scripts/test.sh" in ci


def test_the_main_job_command_works() -> None:
    run_main = _blocks(_section("Set up"))[0]
    cli = run_main.split("&&")[-1].strip()
    args = shlex.split(cli)
    assert args[0] == ".venv/bin/async-pipeline"
    result = run_cli_process(args[1:], REPO)
    assert result.code == 0, result.stderr
    assert "verify: PASSED" in result.stdout


def test_every_tour_command_runs_in_the_quickstart_example() -> None:
    commands = [
        line.split("#", 1)[0].strip()
        for block in _blocks(_section("A five-minute tour"))
        for line in block.splitlines()
        if line.startswith("async-pipeline ")
    ]
    assert len(commands) >= 4
    for command in commands:
        result = run_cli_process(shlex.split(command)[1:], EXAMPLES / "quickstart")
        assert result.code == 0, (command, result.stderr)


def test_the_agent_walkthrough_runs_as_written(tmp_path: Path) -> None:
    example = tmp_path / "agent-claims-repair"
    shutil.copytree(
        EXAMPLES / "agent-claims-repair",
        example,
        ignore=shutil.ignore_patterns(".async", "proposals"),
    )
    lines = [
        line.split("#", 1)[0].strip()
        for block in _blocks(_section("Agent steps: propose, then dispose"))
        for line in block.splitlines()
        if "async-pipeline " in line
    ]
    expected_codes = [0, 0, 1]
    assert len(lines) == len(expected_codes)
    for line, expected in zip(lines, expected_codes, strict=True):
        words = shlex.split(line)
        env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
        args = [w for w in words if w not in {f"{k}={v}" for k, v in env.items()}]
        assert args[0] == "async-pipeline"
        assert run_cli_process(args[1:], example, env=env).code == expected, line
