"""--help, list and metadata start without the heavy machinery other commands need."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES

HEAVY = ("mcp", "anyio", "httpx", "anthropic", "subprocess", "asyncio", "pydantic", "redis")

PROBE = """
import io, json, sys
from async_pipeline.cli import main
main(sys.argv[1:], stdout=io.StringIO(), stderr=io.StringIO())
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["list"],
        ["list", "--format", "json"],
        ["metadata", "--format", "json"],
        ["metadata"],
    ],
)
def test_inspection_commands_do_not_import_heavy_modules(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=FIXTURES / "full",
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "async_pipeline" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
