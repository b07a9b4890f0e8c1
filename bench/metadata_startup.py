"""How fast does ``async-pipeline metadata --format json`` answer on a 1,000-task pipeline?

Run on demand: ``.venv/bin/python bench/metadata_startup.py [--tasks N] [--runs N]``.
Prints the median wall time of the full CLI process and of ``python -c "import pydantic"``
measured alternately in the same run, and their ratio (target: <= 2.5). Both use this
venv's interpreter directly: a shim in front of it can add 100 ms or more. Bytecode
caching is on, as in a default Python setup; the first (warm-up) run fills the caches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_pipeline

TARGET = 2.5
# Measure what users get: Python's bytecode cache on, as it is by default. Some shells here
# export PYTHONDONTWRITEBYTECODE, which would recompile every module on every start.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr.decode()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_pipeline(root, tasks=args.tasks)
        ours = [python, "-m", "async_pipeline", "metadata", "--format", "json"]
        peer = [python, "-c", "import pydantic"]
        _time(ours, root)  # warm the OS file cache and the bytecode caches once
        ours_t: list[float] = []
        peer_t: list[float] = []
        for _ in range(args.runs):
            ours_t.append(_time(ours, root))
            peer_t.append(_time(peer, root))
    ours_m, peer_m = statistics.median(ours_t), statistics.median(peer_t)
    ratio = ours_m / peer_m
    print(f"metadata --format json, {args.tasks} tasks: median {ours_m * 1000:.1f} ms")
    print(f"python -c 'import pydantic':            median {peer_m * 1000:.1f} ms")
    print(f"ratio {ratio:.2f} (target <= {TARGET})  {'OK' if ratio <= TARGET else 'OVER TARGET'}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
