"""The task cache against Turborepo and doit, on the same 1,000-package monorepo.

Run on demand (about five minutes on 2 cores, most of it cold runs; needs ``node``/``npm``
and ``git`` on PATH, and the npm registry and PyPI reachable for the peers)::

    .venv/bin/python bench/cache_vs_peers.py [--keep DIR] [--tools DIR]
        [--packages 1000] [--files-per-package 20] [--bytes-per-file 3000] [--seed 0]
        [--concurrency 2] [--warm-rounds 11] [--cold-rounds 7]

Workspace. ``bench/monorepo.py`` generates one git-committed workspace (1,000 packages of
20 files of 3,000 bytes: 20,000 source files, 60 MB), with the same build declared for the
three runners: ``pipeline.py`` (ours), npm workspaces + ``turbo.json``, and ``dodo.py``. Each
runner then gets its own ``git clone`` of that commit, so no runner sees another's writes:
Turborepo rewrites every output it restores from its cache even when the bytes are the same,
which would otherwise make the next runner re-stat and re-hash files it had already seen.
Ours works in the generated workspace itself; ``--keep DIR`` generates it in ``DIR`` (absent
or empty) and leaves it there, with ours' cache warm, for profiling by hand. Everything else
(the peers' clones, the tools) is removed at the end.

Peers. Installed by this script into a throwaway tools directory (a temporary one, or
``--tools DIR``, which is kept and reused):

- Turborepo: ``npm install turbo@2 --prefix TOOLS`` (npm's download cache also in TOOLS). It
  is called through its native binary (``TOOLS/node_modules/@turbo/<platform>/bin/turbo``),
  not the Node launcher in ``.bin`` nor npx, and its clone gets ``node_modules/turbo`` and
  ``node_modules/@turbo/<platform>`` symlinked to that install, which is where an npm install
  of turbo as a workspace devDependency puts them: turbo then runs as the repository's own
  local turbo (no "No locally installed turbo" warning; the script checks). Telemetry and
  the update check are off (``TURBO_TELEMETRY_DISABLED=1``, ``DO_NOT_TRACK=1``,
  ``TURBO_NO_UPDATE_NOTIFIER=1``); turbo 2 no longer uses its daemon for ``turbo run``. Turbo
  runs each task as ``npm run build``, and npm's own start-up (0.7-2 s a task at this size)
  would swamp the comparison, so a stand-in ``npm`` first on PATH, a ``/bin/sh`` script
  using only shell built-ins, reads the package's ``scripts.build`` from its
  ``package.json`` and runs it itself (anything else goes to the real npm): one shell per
  task, as for ours. Command: ``turbo run build --concurrency=2``, with its local cache.
- doit: ``python -m venv TOOLS/doit-venv`` and ``pip install 'doit>=0.37,<0.38'`` there.
  Command: ``doit -n 2 -P thread build`` or ``doit -n 2 build`` (processes), whichever was
  faster over two cold runs each before measuring (the output says which and by how much);
  its default dbm state file (json and sqlite3 backends measured the same).

Ours: ``async-pipeline run build --concurrency 2 --format json``, through this venv's script
or ``python -m async_pipeline``, whichever starts faster (as in ``bench/runner_cold.py``).

Cases, each timed as the whole runner process from spawn to exit, alternating between the
runners in every round (the order rotates from round to round), after ``os.sync()``:

- (c) cold: each runner's state and the build outputs are removed before every run (ours
  ``.async/``, turbo ``.turbo/`` and ``node_modules/.cache/turbo``, doit ``.doit.db*``, and
  every ``dist/``), so all 1,000 tasks run. Also timed, as the floor: the bare Python script
  of ``bench/runner_cold.py`` that spawns the same commands with ``/bin/sh -c``, 2 at a
  time in dependency order, and nothing else. Measured first, with one untimed round. And,
  as a reference that is not a target, the store floor: the floor plus the least work the
  spec's file store asks for (each task's inputs read and hashed, its output hashed and
  stored in one entry file, one baseline file per task, one stat cache), done between
  non-blocking waits so it overlaps the commands (``STORE_FLOOR_SCRIPT``).
- (a) warm no-op: nothing changed since the runner's last run; every task is a cache hit.
  Two untimed runs of each runner first.
- (b) warm, one change: before each round one line is appended to ``src/m00.py`` of one leaf
  package (nothing depends on it) in each runner's workspace, so exactly one task reruns.

Checked on every run, not assumed: ours' JSON record (``cacheHit`` false for exactly the
expected tasks: all, none, or the one leaf), turbo's per-task ``cache hit``/``cache miss``
lines, doit's per-task ``.`` (ran) / ``--`` (up to date) lines; after each cold run, the
digest of all 1,000 outputs must equal the floor's, and after each (b) run the leaf's output
must be the same for the three runners. Peak RSS is ``ru_maxrss`` from ``os.wait4`` on the
runner process: the largest single process of its tree (for ours, the Python process).

Targets, on this machine (exit status 0 if all are met, 1 otherwise):

- (a) ours <= 0.4 x turbo and <= 0.75 x doit (medians);
- (b) ours <= ours' (a) median plus the one task (the leaf's command timed alone);
- (c) ours <= 0.75 x turbo and <= 1.3 x the floor;
- ours' peak RSS <= 60 MiB in every case.

Beside each ratio the output gives the ratio of median CPU times (the runner and the commands
it waited for), which other work on a shared machine disturbs much less than wall time.

Everything runs with ``PYTHONDONTWRITEBYTECODE`` removed from the environment, so Python's
bytecode cache is on as in a default setup.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import monorepo
import runner_cold

TURBO_SPEC = "turbo@2"
DOIT_SPEC = "doit>=0.37,<0.38"
A_VS_TURBO, A_VS_DOIT = 0.4, 0.75
C_VS_TURBO, C_VS_FLOOR = 0.75, 1.3
RSS_LIMIT_MIB = 60
EDITED_FILE = "src/m00.py"
STORE = ".store-floor"  # the store floor's cache, beside ours' .async/ in its workspace
# Measure what users get: Python's bytecode cache on, as it is by default. Some shells here
# export PYTHONDONTWRITEBYTECODE, which would recompile every module on every start.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
TURBO_QUIET = {
    "TURBO_TELEMETRY_DISABLED": "1",
    "DO_NOT_TRACK": "1",
    "TURBO_NO_UPDATE_NOTIFIER": "1",
}
ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
TURBO_TASK = re.compile(rb"^(?:\S+/)?(\S+):build: cache (hit|miss)", re.MULTILINE)
DOIT_TASK = re.compile(rb"^(\.|--) +build:(\S+)$", re.MULTILINE)

# `npm run NAME` -> package.json's scripts.NAME, run in the package directory as npm would,
# minus npm. Shell built-ins only (no sed, no second shell), so each task costs turbo one
# /bin/sh, as it costs ours. monorepo.py writes that key on its own line, and the script
# checks that no build command contains a quote or a backslash, so this reads it exactly.
NPM_STAND_IN = """\
#!/bin/sh
# Stand-in for `npm run SCRIPT`, written by bench/cache_vs_peers.py: see its docstring.
if [ "$1" = run ] && [ "$#" -eq 2 ]; then
    while IFS= read -r line; do
        case $line in
        *"\\"$2\\": \\""*)
            script=${line#*\\"$2\\": \\"}
            eval "${script%\\"*}"
            exit
            ;;
        esac
    done < package.json
fi
exec REAL_NPM "$@"
"""


# The least a runner can do that keeps the file store this project's spec asks for: the
# floor's spawn loop (``runner_cold.FLOOR_SCRIPT``) plus, per task, its inputs read and
# hashed before it starts, its output hashed and copied into one entry file and one baseline
# file per task (each written under a temporary name and renamed into place), and one stat
# cache for the whole run. No records, logs, locks, stamps or threads; the hashing of a
# ready task's inputs and the storing of a finished one's output are done while commands
# run (between non-blocking waits), so only work that cannot overlap them delays them.
STORE_FLOOR_SCRIPT = (
    '"""Lower bound with a file store: the floor plus the cache writes the spec requires."""\n'
    + runner_cold.PLAN_PREAMBLE
    + """
import hashlib

state = sys.argv[3]
for sub in ("tasks", "baselines"):
    os.makedirs(os.path.join(state, sub), exist_ok=True)
stat_cache = {}
keys = {}


def digest(path):
    with open(path, "rb") as handle:
        data = handle.read()
    st = os.stat(path)
    value = hashlib.sha256(data).hexdigest()
    stat_cache[path] = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, value]
    return value, data


def publish(path, data):
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.rename(temporary, path)


def prepare(name):
    task = tasks[name]
    inputs = {f: digest(os.path.join(task["dir"], f))[0] for f in task["files"]}
    key = hashlib.sha256(
        json.dumps([name, task["rootCommand"], inputs, [keys[d] for d in task["deps"]]]).encode()
    ).hexdigest()
    keys[name] = key
    return inputs


def store(name, inputs):
    task = tasks[name]
    outputs = {}
    blobs = []
    for output in task["outputs"]:
        value, data = digest(os.path.join(task["dir"], output))
        outputs[output] = value
        blobs.append(data)
    head = json.dumps({"task": name, "inputs": inputs, "outputs": outputs}).encode()
    publish(os.path.join(state, "tasks", keys[name] + ".entry"), head + b"\\n" + b"".join(blobs))
    baseline = json.dumps({"task": name, "key": keys[name]}).encode()
    publish(os.path.join(state, "baselines", name + ".json"), baseline)


prepared = {}
running = {}
finished = deque()
count = 0
while ready or running or finished:
    while ready and len(running) < jobs:
        name = ready.popleft()
        inputs = prepared.pop(name, None) or prepare(name)
        argv = ["/bin/sh", "-c", tasks[name]["rootCommand"]]
        running[os.posix_spawn("/bin/sh", argv, os.environ)] = (name, inputs)
    # Work that can overlap the running commands: store finished tasks, hash ready inputs.
    unprepared = [n for n in ready if n not in prepared]
    if finished:
        store(*finished.popleft())
        pid, status = os.waitpid(-1, os.WNOHANG) if running else (0, 0)
    elif unprepared:
        prepared[unprepared[0]] = prepare(unprepared[0])
        pid, status = os.waitpid(-1, os.WNOHANG) if running else (0, 0)
    elif running:
        pid, status = os.wait()
    else:
        continue
    if pid == 0:
        continue
    name, inputs = running.pop(pid)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name} failed")
    count += 1
    finished.append((name, inputs))
    done(name)
publish(os.path.join(state, "stat-cache.json"), json.dumps(stat_cache).encode())
if count != len(tasks):
    sys.exit(f"ran {count} of {len(tasks)} tasks")
"""
)


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float
    cpu: float
    rss_kib: int


@dataclass
class Runner:
    """One way of building the workspace, with its clone, state and output parser."""

    name: str
    argv: list[str]
    root: Path
    state: tuple[str, ...]  # root-relative paths (globs) that hold its cache or state
    env: dict[str, str]
    # stdout -> (build tasks it reported, cached or not; packages whose build ran), or None
    # for the floor, which reports nothing and runs everything.
    parse: Callable[[bytes], tuple[int, set[str]] | None]
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def _spawn(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[Sample, bytes, bytes]:
    """Run ``argv`` once; wall time, CPU and peak RSS of its process tree, and its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # Flush earlier writes (a cold run's outputs, a wipe) so no run pays for another's.
        os.sync()
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        # wait4 reports this child's own rusage (its reaped descendants folded in): exact
        # per run, unlike RUSAGE_CHILDREN deltas whose ru_maxrss is a running maximum.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        tail = (stdout[-2000:] + stderr[-2000:]).decode(errors="replace")
        raise SystemExit(f"{argv} in {cwd} failed ({proc.returncode}):\n{tail}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss), stdout, stderr


def _quiet(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run a setup command; its output only if it fails."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


# --- peers --------------------------------------------------------------------------------


def install_peers(tools: Path) -> tuple[Path, Path, Path, str]:
    """Turborepo and doit in ``tools``; returns turbo's native binary, its platform package,
    the doit executable, and a version line."""
    real_npm = shutil.which("npm")
    if real_npm is None:
        raise SystemExit("npm not found: install Node.js and npm to benchmark Turborepo")
    tools.mkdir(parents=True, exist_ok=True)
    # npm's download cache inside the tools dir, so cleaning up removes it too.
    npm_env = {**ENV, "npm_config_cache": str(tools / "npm-cache")}
    _quiet(
        [real_npm, "install", TURBO_SPEC, "--prefix", str(tools), "--no-audit", "--no-fund"],
        env=npm_env,
    )
    # The native binary: `.bin/turbo` is a Node launcher that adds Node's start-up to every
    # run, which is not turbo's honest best.
    natives = sorted(tools.glob("node_modules/@turbo/*/bin/turbo"))
    if len(natives) != 1:
        raise SystemExit(f"expected one turbo platform binary, found {natives}")
    turbo = natives[0]
    venv = tools / "doit-venv"
    if not (venv / "bin" / "python").exists():
        _quiet([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _quiet([*pip, "--disable-pip-version-check", "--no-cache-dir", DOIT_SPEC], env=ENV)
    doit = venv / "bin" / "doit"
    stand_in = tools / "bin" / "npm"
    stand_in.parent.mkdir(exist_ok=True)
    stand_in.write_text(NPM_STAND_IN.replace("REAL_NPM", shlex.quote(real_npm)), encoding="utf-8")
    stand_in.chmod(0o755)
    turbo_v = subprocess.run([turbo, "--version"], capture_output=True, text=True, env=ENV)
    doit_v = subprocess.run([doit, "--version"], capture_output=True, text=True, env=ENV)
    versions = f"turbo {turbo_v.stdout.strip()}, doit {doit_v.stdout.split()[0]}"
    return turbo, turbo.parent.parent, doit, versions


def _clone(source: Path, dest: Path) -> None:
    """A fresh clone: same commit, same bytes, its own git index (so git status is cheap)."""
    _quiet(["git", "clone", "-q", str(source), str(dest)])


def _parse_turbo(stdout: bytes) -> tuple[int, set[str]]:
    """Turbo prints ``@mono/pNNNN:build: cache hit, ...`` or ``... cache miss, ...``."""
    lines = TURBO_TASK.findall(ANSI.sub(b"", stdout))
    return len(lines), {name.decode() for name, status in lines if status == b"miss"}


def _parse_doit(stdout: bytes) -> tuple[int, set[str]]:
    """doit prints ``. build:pNNNN`` for a task it ran, ``-- build:pNNNN`` for one up to date."""
    lines = DOIT_TASK.findall(stdout)
    return len(lines), {name.decode() for mark, name in lines if mark == b"."}


def _parse_ours(stdout: bytes) -> tuple[int, set[str]]:
    """Our run record (``--format json``): a task ran iff its ``cacheHit`` is false."""
    record = json.loads(stdout)
    if record["status"] != "passed":
        raise SystemExit(f"ours: run {record['status']}")
    tasks = record["tasks"]
    return len(tasks), {t["id"].removesuffix(".build") for t in tasks if not t["cacheHit"]}


# --- measuring ----------------------------------------------------------------------------


def _wipe(runner: Runner, repo: monorepo.Monorepo) -> None:
    for pattern in runner.state:
        for path in runner.root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for package in repo.packages:
        shutil.rmtree(runner.root / package.dir / "dist", ignore_errors=True)


def _digest(root: Path, packages: list[str]) -> str:
    """One digest over the named packages' build outputs."""
    h = hashlib.sha256()
    for name in packages:
        h.update(name.encode() + b"\0" + (root / "packages" / name / monorepo.BUNDLE).read_bytes())
    return h.hexdigest()


def run_once(
    runner: Runner,
    case: str,
    repo: monorepo.Monorepo,
    expect: set[str],
    *,
    timed: bool = True,
) -> Sample:
    """One run of ``runner``; checks that exactly the ``expect``ed builds ran."""
    sample, stdout, stderr = _spawn(runner.argv, runner.root, runner.env)
    if b"No locally installed" in stderr:
        raise SystemExit("turbo did not find itself installed in the workspace")
    parsed = runner.parse(stdout)
    if parsed is not None:
        count, executed = parsed
        if count != len(repo.packages):
            raise SystemExit(f"{runner.name} ({case}): reported {count} build tasks")
        if executed != expect:
            raise SystemExit(
                f"{runner.name} ({case}): ran {len(executed)} builds, expected {len(expect)}; "
                f"differing: {sorted(executed ^ expect)[:5]}"
            )
    if timed:
        runner.samples.setdefault(case, []).append(sample)
    return sample


def _source_state() -> str:
    """Which async-pipeline was measured: the commit, and whether src/ differs from it."""
    repo = Path(__file__).resolve().parent.parent
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    return f"{head or 'unknown commit'}" + (" + uncommitted changes in src/" if dirty else "")


def _rotated(items: list[Runner], k: int) -> list[Runner]:
    k %= len(items)
    return items[k:] + items[:k]


def cold_rounds(
    runners: list[Runner], floors: list[Runner], repo: monorepo.Monorepo, rounds: int
) -> None:
    everything = {p.name for p in repo.packages}
    names = sorted(everything)
    reference: str | None = None
    for index in range(rounds + 1):  # round 0 warms the OS caches and is not timed
        for runner in _rotated([*runners, *floors], index):
            _wipe(runner, repo)
            run_once(runner, "c", repo, everything, timed=index > 0)
            digest = _digest(runner.root, names)
            reference = reference or digest
            if digest != reference:
                raise SystemExit(f"{runner.name}: cold-run outputs differ from the others'")


def choose_doit(modes: list[Runner], repo: monorepo.Monorepo, runs: int = 2) -> tuple[Runner, str]:
    """doit's faster parallel mode at this concurrency, over ``runs`` cold runs each."""
    everything = {p.name for p in repo.packages}
    walls: dict[str, list[float]] = {m.name: [] for m in modes}
    for index in range(runs):
        for mode in _rotated(modes, index):
            _wipe(mode, repo)
            walls[mode.name].append(run_once(mode, "c", repo, everything, timed=False).wall)
    best = min(modes, key=lambda m: statistics.median(walls[m.name]))
    detail = ", ".join(f"{n} {statistics.median(w):.2f} s" for n, w in walls.items())
    return best, f"doit mode: `{' '.join(best.argv[1:])}` (cold medians: {detail})"


def warm_rounds(runners: list[Runner], repo: monorepo.Monorepo, rounds: int) -> None:
    for runner in runners:  # settle each runner on the state left by the cold runs
        for _ in range(2):
            run_once(runner, "warm-up", repo, set(), timed=False)
    for index in range(rounds):
        for runner in _rotated(runners, index):
            run_once(runner, "a", repo, set())


def edit_rounds(runners: list[Runner], repo: monorepo.Monorepo, leaf: str, rounds: int) -> None:
    for index in range(rounds):
        for runner in runners:
            # A new line each round, the same in every workspace, so each runner sees exactly one
            # changed source file since its own last run.
            with (runner.root / "packages" / leaf / EDITED_FILE).open("a", encoding="utf-8") as f:
                f.write(f"# bench edit {index}\n")
        outputs = set()
        for runner in _rotated(runners, index):
            run_once(runner, "b", repo, {leaf})
            outputs.add(_digest(runner.root, [leaf]))
        if len(outputs) != 1:
            raise SystemExit(f"round {index}: the runners built different outputs for {leaf}")


def command_time(root: Path, command: str, runs: int = 9) -> float:
    """Median wall time of one build command spawned alone with ``/bin/sh -c``."""
    walls = []
    # posix_spawn has no working-directory argument; the shell's `cd` costs microseconds.
    argv = ["/bin/sh", "-c", f"cd {shlex.quote(str(root))} && {command}"]
    for _ in range(runs):
        os.sync()
        start = time.perf_counter()
        pid = os.posix_spawn("/bin/sh", argv, ENV)
        _, status = os.waitpid(pid, 0)
        walls.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{command} failed in {root}")
    return statistics.median(walls)


# --- report -------------------------------------------------------------------------------


def _median(runner: Runner, case: str) -> float:
    return statistics.median(s.wall for s in runner.samples[case])


def _row(runner: Runner, case: str) -> str:
    samples = runner.samples[case]
    walls = [s.wall for s in samples]
    cpu = statistics.median(s.cpu for s in samples)
    rss = max(s.rss_kib for s in samples) / 1024
    return (
        f"  {runner.name:<6} median {statistics.median(walls):7.3f} s  "
        f"(min {min(walls):.3f}, max {max(walls):.3f}, n={len(walls)})  "
        f"CPU {cpu:6.3f} s  peak RSS {rss:6.1f} MiB"
    )


def _cpu(ours: Runner, other: Runner, case: str) -> str:
    """Median CPU seconds (the runner and its commands) of ours over the other's."""
    ratio = statistics.median(s.cpu for s in ours.samples[case]) / statistics.median(
        s.cpu for s in other.samples[case]
    )
    return f"[CPU {ratio:.2f}x]"


def _check(label: str, value: float, limit: float, unit: str = "x") -> bool:
    ok = value <= limit
    print(f"  {label}: {value:.2f}{unit} (target <= {limit}{unit})  {'OK' if ok else 'MISSED'}")
    return ok


def report(runners: list[Runner], floors: list[Runner], task_s: float, tasks: int) -> bool:
    ours, turbo, doit = runners
    floor, store_floor = floors
    print(f"\n(c) cold run, all {tasks} tasks (state and outputs wiped before each run):")
    for runner in [*runners, *floors]:
        print(_row(runner, "c"))
    c_floor, c_store = _median(floor, "c"), _median(store_floor, "c")
    print(
        f"  store-floor / floor: {c_store / c_floor:.2f}x {_cpu(store_floor, floor, 'c')}: the "
        "least the spec's file store adds (a reference, not a target)"
    )
    ours_c = _median(ours, "c") / c_store
    print(f"  ours / store-floor: {ours_c:.2f}x {_cpu(ours, store_floor, 'c')}")
    print("(a) warm no-op run (everything cached):")
    for runner in runners:
        print(_row(runner, "a"))
    print("(b) warm run after a one-line edit to one leaf package (one task reruns):")
    for runner in runners:
        print(_row(runner, "b"))
    print(f"  the leaf's build command alone: {task_s * 1000:.1f} ms")
    for runner in runners:
        extra = (_median(runner, "b") - _median(runner, "a")) * 1000
        print(f"  {runner.name:<6} (b) - (a): {extra:+.0f} ms")
    print("\ntargets (wall-time medians; in brackets the CPU-time ratio, which other work on")
    print("the machine disturbs less):")
    a, b, c = (_median(ours, case) for case in "abc")
    results = [
        _check(f"(a) ours / turbo {_cpu(ours, turbo, 'a')}", a / _median(turbo, "a"), A_VS_TURBO),
        _check(f"(a) ours / doit {_cpu(ours, doit, 'a')}", a / _median(doit, "a"), A_VS_DOIT),
        _check(
            f"(b) ours {b:.3f} s over ours' (a) + one task ({a + task_s:.3f} s)",
            (b - a - task_s) * 1000,
            0,
            " ms",
        ),
        _check(f"(c) ours / turbo {_cpu(ours, turbo, 'c')}", c / _median(turbo, "c"), C_VS_TURBO),
        _check(f"(c) ours / floor {_cpu(ours, floor, 'c')}", c / _median(floor, "c"), C_VS_FLOOR),
    ]
    rss = max(s.rss_kib for samples in ours.samples.values() for s in samples) / 1024
    results.append(_check("ours' peak RSS", rss, RSS_LIMIT_MIB, " MiB"))
    met = all(results)
    print(f"\n{sum(results)} of {len(results)} targets met")
    return met


# --- main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description="The task cache vs. Turborepo and doit (see the module docstring)."
    )
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--files-per-package", type=int, default=20)
    parser.add_argument("--bytes-per-file", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--warm-rounds", type=int, default=11, help="rounds of (a) and of (b)")
    parser.add_argument("--cold-rounds", type=int, default=7, help="timed rounds of (c)")
    parser.add_argument("--keep", type=Path, help="generate ours' workspace here and keep it")
    parser.add_argument("--tools", type=Path, help="install the peers here and keep them")
    args = parser.parse_args()
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"{args.keep} is not empty")
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cache-vs-peers-") as tmp:
        scratch = Path(tmp)
        tools = args.tools or scratch / "tools"
        repo = monorepo.plan(args.packages, args.files_per_package, args.bytes_per_file, args.seed)
        for package in repo.packages:
            # The npm stand-in reads scripts.build verbatim: no quote or escape may be in it.
            if '"' in package.command or "\\" in package.command:
                raise SystemExit(f"{package.name}: the npm stand-in cannot read its command")
        root = (args.keep or scratch / "ours").resolve()
        print(f"generating the workspace in {root} ...", flush=True)
        monorepo.write(repo, root, git=True)
        print("installing the peers ...", flush=True)
        turbo_bin, turbo_platform, doit_bin, versions = install_peers(tools)
        turbo_root, doit_root = scratch / "turbo", scratch / "doit"
        _clone(root, turbo_root)
        _clone(root, doit_root)
        # Where an npm install of turbo as a devDependency would put it: turbo then runs as
        # the workspace's own local turbo instead of warning that none is installed.
        (turbo_root / "node_modules" / "@turbo").mkdir(parents=True)
        (turbo_root / "node_modules" / "turbo").symlink_to(tools / "node_modules" / "turbo")
        link = turbo_root / "node_modules" / "@turbo" / turbo_platform.name
        link.symlink_to(turbo_platform)
        jobs = str(args.concurrency)
        entry, entry_note = runner_cold._entry_point(root)
        turbo_env = {**ENV, **TURBO_QUIET, "PATH": f"{tools / 'bin'}{os.pathsep}{ENV['PATH']}"}
        ours = Runner(
            "ours",
            [*entry, "run", "build", "--concurrency", jobs, "--format", "json"],
            root,
            (".async",),
            ENV,
            _parse_ours,
        )
        turbo = Runner(
            "turbo",
            [str(turbo_bin), "run", "build", f"--concurrency={jobs}"],
            turbo_root,
            (".turbo", "node_modules/.cache/turbo"),
            turbo_env,
            _parse_turbo,
        )
        doit_modes = [
            Runner(
                f"doit-{mode}",
                [str(doit_bin), "-n", jobs, *extra, "build"],
                doit_root,
                (".doit.db*",),
                ENV,
                _parse_doit,
            )
            for mode, extra in (("thread", ["-P", "thread"]), ("process", []))
        ]
        floor_script = scratch / "floor.py"
        floor_script.write_text(runner_cold.FLOOR_SCRIPT, encoding="utf-8")
        floor = Runner(
            "floor",
            [sys.executable, str(floor_script), str(root / "monorepo.json"), jobs],
            root,
            (),
            ENV,
            lambda _: None,
        )
        store_floor_script = scratch / "store_floor.py"
        store_floor_script.write_text(STORE_FLOOR_SCRIPT, encoding="utf-8")
        store_floor = Runner(
            "store-floor",
            [sys.executable, str(store_floor_script), str(root / "monorepo.json"), jobs, STORE],
            root,
            (STORE,),
            ENV,
            lambda _: None,
        )
        print("calibrating doit ...", flush=True)
        doit, doit_note = choose_doit(doit_modes, repo)
        doit.name = "doit"
        runners = [ours, turbo, doit]
        load_before = os.getloadavg()[0]
        print("(c) cold rounds ...", flush=True)
        cold_rounds(runners, [floor, store_floor], repo, args.cold_rounds)
        print("(a) warm rounds ...", flush=True)
        warm_rounds(runners, repo, args.warm_rounds)
        print("(b) one-edit rounds ...", flush=True)
        leaf = repo.leaves[-1]
        edit_rounds(runners, repo, leaf, args.warm_rounds)
        leaf_command = next(p.root_command for p in repo.packages if p.name == leaf)
        task_s = command_time(root, leaf_command)
        load_after = os.getloadavg()[0]
        if args.keep:
            # Leave the kept workspace at its commit, with ours' cache warm for it.
            _quiet(["git", "checkout", "-q", "--", "."], cwd=root)
            _spawn(ours.argv, root, ENV)
        elapsed = time.perf_counter() - started
        files = args.packages * args.files_per_package
        print(
            f"\n{args.packages} packages ({len(repo.leaves)} leaves), {files} source files, "
            f"{files * args.bytes_per_file / 1e6:.0f} MB, seed {args.seed}, concurrency "
            f"{args.concurrency}; edited leaf: {leaf}/{EDITED_FILE}"
        )
        print(f"ours:  {_source_state()}; {entry_note}")
        print(f"peers: {versions}; {doit_note}")
        print(
            f"1-minute load average {load_at_start:.2f} at the start, {load_before:.2f} before "
            f"the rounds, {load_after:.2f} after (this benchmark alone adds about "
            f"{args.concurrency})"
        )
        if load_at_start > 0.5 or load_after > args.concurrency + 1:
            print("  other work was running on this machine: expect noisier numbers")
        print(f"workspace: {root}" + ("" if args.keep else " (removed)"))
        met = report(runners, [floor, store_floor], task_s, len(repo.packages))
        print(f"benchmark took {elapsed / 60:.1f} min")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
