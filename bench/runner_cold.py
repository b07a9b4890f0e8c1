"""How close is a cold ``async-pipeline run`` to the cost of just spawning its commands?

Run on demand (one to two minutes on 2 cores)::

    .venv/bin/python bench/runner_cold.py [--packages 1000] [--rounds 7] [--concurrency 2]
        [--seed 0] [--keep DIR]

It generates a trivial monorepo with ``bench/monorepo.py``'s ``trivial`` mode: 1,000
packages in a seeded dependency DAG, each task ``cd packages/pNNNN && echo pNNNN >
stamp.txt``, with caching off unless ``--cache`` is given: this measures the runner (plan,
spawn, logs, records), not the task cache. Then, alternating over several rounds after one
warm-up of each, it times:

- ours: a cold ``async-pipeline run build --concurrency 2``, the whole process (start-up,
  loading ``pipeline.py``, planning, running, records and logs). Cold means ``.async/`` is
  removed before every run. The CLI's text output goes to /dev/null. Both entry points,
  the venv's ``async-pipeline`` script and ``python -m async_pipeline``, are timed on
  ``list`` first and the faster one is used; the output says which.
- the floor: a bare Python script, written to a temporary file and run by the same
  interpreter, that starts the same commands with ``os.posix_spawn("/bin/sh", "-c", ...)``
  at most 2 at a time in dependency order and reaps them with ``os.wait()``: no threads,
  no pipes, no records. (A pool of 2 threads calling ``subprocess.run`` measured the same
  or slightly slower.) Nothing honest runs these commands in this order much faster.
- the asyncio skeleton: a second bare script, the least a runner built on asyncio that
  captures each command's stdout and stderr separately must do. Under ``asyncio.run``, at
  most 2 asyncio tasks at a time, each starts its command with ``os.posix_spawn`` in its
  own session (so a runner could kill its process group), stdin from /dev/null and two
  pipes, reads both pipes with ``loop.add_reader`` into memory, waits on a pidfd and reaps
  with ``os.waitpid``: no records, no log files, no imports beyond the standard library.

Before every timed run, ``os.sync()`` flushes earlier writes so no side pays for another's.
It prints the three medians (wall time), the median CPU time (user + system of the process
and everything it waited for), the 1-minute load average (this benchmark's own processes
included) and the overhead per task.

The ratio is median(ours) / median(floor): how many times longer a cold run takes than
running its commands with nothing around them (1.0: the runner costs nothing). The target
is <= 1.3; the exit status is 0 when it is met, 1 otherwise. The skeleton does not count
toward the target: skeleton / floor is a reference for how much of the gap is the event
loop and output capture that any such runner needs, and ours / skeleton the rest (the
CLI's own imports, loading ``pipeline.py``, planning, records, logs and any extra work per
task). All sides use this venv's interpreter directly (a shim in front of it adds 100 ms or
more per process) and run with ``PYTHONDONTWRITEBYTECODE`` removed from the environment, so
bytecode caching is on as in a default Python setup. ``--keep DIR`` generates the workspace
in ``DIR`` (absent or empty) and leaves it there, e.g. to compare file systems or to profile
a run by hand.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import monorepo

TARGET = 1.3
# Measure what users get: Python's bytecode cache on, as it is by default. Some shells here
# export PYTHONDONTWRITEBYTECODE, which would recompile every module on every start.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# What the bare scripts below share: the plan from ``monorepo.json`` (argv[1]) and the
# concurrency (argv[2]); ``tasks`` (name -> package), ``waiting`` (name -> unfinished
# dependencies), ``dependents`` and the initially ``ready`` queue, and ``done(name)`` to
# call when a task has finished, which queues the dependents it made ready.
PLAN_PREAMBLE = """\
import json
import os
import sys
from collections import deque

with open(sys.argv[1], "rb") as handle:
    tasks = {t["name"]: t for t in json.load(handle)["packages"]}
jobs = int(sys.argv[2])
waiting = {name: set(t["deps"]) for name, t in tasks.items()}
dependents = {name: [] for name in tasks}
for name, deps in waiting.items():
    for dep in deps:
        dependents[dep].append(name)
ready = deque(name for name, deps in waiting.items() if not deps)


def done(name):
    for child in dependents[name]:
        waiting[child].discard(name)
        if not waiting[child]:
            ready.append(child)
"""

FLOOR_SCRIPT = (
    '"""Lower bound: each command spawned with /bin/sh -c, N at a time, in dependency order."""\n'
    + PLAN_PREAMBLE
    + """
running = {}
finished = 0
while ready or running:
    while ready and len(running) < jobs:
        name = ready.popleft()
        argv = ["/bin/sh", "-c", tasks[name]["rootCommand"]]
        running[os.posix_spawn("/bin/sh", argv, os.environ)] = name
    pid, status = os.wait()
    name = running.pop(pid)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name} failed")
    finished += 1
    done(name)
if finished != len(tasks):
    sys.exit(f"ran {finished} of {len(tasks)} tasks")
"""
)

SKELETON_SCRIPT = (
    '"""Lower bound for an asyncio runner that captures each command\'s stdout and stderr."""\n'
    + PLAN_PREAMBLE
    + """
import asyncio

CHUNK = 64 * 1024


async def run(argv, env, stdin):
    \"\"\"Run argv in its own session; return its exit code, stdout and stderr chunks.\"\"\"
    loop = asyncio.get_running_loop()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    actions = [
        (os.POSIX_SPAWN_DUP2, stdin, 0),
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, err_w, 2),
    ]
    try:
        pid = os.posix_spawn("/bin/sh", argv, env, file_actions=actions, setsid=True)
    finally:
        os.close(out_w)
        os.close(err_w)
    pidfd = os.pidfd_open(pid)
    over = loop.create_future()
    chunks = {out_r: [], err_r: []}
    pending = 3  # two pipes at EOF and the pidfd readable

    def finish():
        nonlocal pending
        pending -= 1
        if pending == 0:
            over.set_result(None)

    def on_pipe(fd):
        data = os.read(fd, CHUNK)
        if data:
            chunks[fd].append(data)
        else:
            loop.remove_reader(fd)
            os.close(fd)
            finish()

    def on_exit():
        loop.remove_reader(pidfd)
        finish()

    loop.add_reader(out_r, on_pipe, out_r)
    loop.add_reader(err_r, on_pipe, err_r)
    loop.add_reader(pidfd, on_exit)
    await over
    os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), chunks[out_r], chunks[err_r]


async def main():
    running = {}
    env = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
    stdin = os.open(os.devnull, os.O_RDONLY)
    finished = 0
    while ready or running:
        while ready and len(running) < jobs:
            name = ready.popleft()
            argv = ["/bin/sh", "-c", tasks[name]["rootCommand"]]
            running[asyncio.create_task(run(argv, env, stdin))] = name
        complete, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in complete:
            name = running.pop(task)
            code, _, err = task.result()
            if code != 0:
                return f"{name} failed ({code}): {b''.join(err).decode(errors='replace')}"
            finished += 1
            done(name)
    if finished != len(tasks):
        return f"ran {finished} of {len(tasks)} tasks"
    return None


sys.exit(asyncio.run(main()))
"""
)


def _time(argv: list[str], cwd: Path, before: Path | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the process and all it waited for) of one run."""
    if before is not None:
        shutil.rmtree(before, ignore_errors=True)
    # Flush earlier rounds' writes (and the removal above) so neither side pays for them.
    os.sync()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()}")
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    return elapsed, cpu


def _entry_point(root: Path) -> tuple[list[str], str]:
    """The faster way to start the CLI: the venv's script or ``python -m async_pipeline``."""
    script = Path(sys.executable).with_name("async-pipeline")
    candidates = [([sys.executable, "-m", "async_pipeline"], "python -m async_pipeline")]
    if script.exists():
        candidates.append(([str(script)], f"{script.name} (venv script)"))
    timings: dict[str, list[float]] = {label: [] for _, label in candidates}
    for _ in range(7):
        for argv, label in candidates:
            timings[label].append(_time([*argv, "list"], root)[0])
    best = min(candidates, key=lambda c: statistics.median(timings[c[1]]))
    detail = ", ".join(
        f"{label} {statistics.median(t) * 1000:.0f} ms" for label, t in timings.items()
    )
    return best[0], f"{best[1]} (median `list`: {detail})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Cold async-pipeline run vs. a bare spawn loop and an asyncio skeleton "
        "(see the module docstring)."
    )
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="generate the workspace here and keep it")
    parser.add_argument(
        "--cache",
        action="store_true",
        help="keep cache=True on the tasks (default: off, to time the runner alone; "
        "the cache's own benchmark is bench/cache_vs_peers.py)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runner-cold-") as tmp:
        root = args.keep or Path(tmp) / "workspace"
        where = str(args.keep) if args.keep else "a temporary directory"
        repo = monorepo.plan(args.packages, 1, 64, args.seed, trivial=True)
        monorepo.write(repo, root)
        if not args.cache:
            pipeline_file = root / "pipeline.py"
            pipeline_file.write_text(
                pipeline_file.read_text().replace("cache=True", "cache=False"), encoding="utf-8"
            )
        floor_script = Path(tmp) / "floor.py"
        floor_script.write_text(FLOOR_SCRIPT, encoding="utf-8")
        skeleton_script = Path(tmp) / "skeleton.py"
        skeleton_script.write_text(SKELETON_SCRIPT, encoding="utf-8")
        jobs = str(args.concurrency)
        entry, entry_note = _entry_point(root)
        ours = [*entry, "run", "build", "--concurrency", jobs]
        floor = [sys.executable, str(floor_script), str(root / "monorepo.json"), jobs]
        skeleton = [sys.executable, str(skeleton_script), str(root / "monorepo.json"), jobs]
        state = root / ".async"
        _time(ours, root, state)  # warm the OS file cache and the bytecode caches once
        _time(floor, root)
        _time(skeleton, root)
        load_before = os.getloadavg()[0]
        ours_t: list[tuple[float, float]] = []
        floor_t: list[tuple[float, float]] = []
        skeleton_t: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            ours_t.append(_time(ours, root, state))
            floor_t.append(_time(floor, root))
            skeleton_t.append(_time(skeleton, root))
        load_after = os.getloadavg()[0]
    sides = (ours_t, floor_t, skeleton_t)
    ours_m, floor_m, skeleton_m = (statistics.median(t for t, _ in times) for times in sides)
    ours_cpu, floor_cpu, skeleton_cpu = (statistics.median(c for _, c in times) for times in sides)
    ratio = ours_m / floor_m
    per_task = (ours_m - floor_m) / args.packages * 1000
    print(
        f"{args.packages} trivial tasks, concurrency {args.concurrency}, seed {args.seed}, "
        f"{args.rounds} alternating rounds after one warm-up each, workspace {where}"
    )
    print(f"ours:  {entry_note}")
    print("PYTHONDONTWRITEBYTECODE removed from the child environment (bytecode cache on)")
    print(f"1-minute load average {load_before:.2f} before, {load_after:.2f} after the rounds")
    print(f"cold `async-pipeline run build`: median {ours_m:.3f} s  {_spread(ours_t)}")
    print(f"floor (posix_spawn loop):        median {floor_m:.3f} s  {_spread(floor_t)}")
    print(f"asyncio skeleton (pipes, pidfd): median {skeleton_m:.3f} s  {_spread(skeleton_t)}")
    print(
        f"CPU (user+sys incl. commands):   ours {ours_cpu:.3f} s, floor {floor_cpu:.3f} s, "
        f"skeleton {skeleton_cpu:.3f} s"
    )
    print(f"overhead {per_task:.2f} ms per task over the floor")
    print(
        f"skeleton / floor {skeleton_m / floor_m:.2f} (the least an asyncio runner capturing "
        "output costs, before starting up and loading pipeline.py; not part of the target)"
    )
    print(f"ours / skeleton {ours_m / skeleton_m:.2f}")
    verdict = "OK" if ratio <= TARGET else "OVER TARGET"
    print(f"ratio ours/floor {ratio:.2f} (target <= {TARGET})  {verdict}")
    return 0 if ratio <= TARGET else 1


def _spread(times: list[tuple[float, float]]) -> str:
    walls = [t for t, _ in times]
    return f"(min {min(walls):.3f}, max {max(walls):.3f})"


if __name__ == "__main__":
    raise SystemExit(main())
