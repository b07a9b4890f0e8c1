"""A deterministic synthetic monorepo, with the same build declared for three runners.

``plan(...)`` draws N packages in a dependency DAG (package ``i`` depends on up to three
earlier packages) from a seed; ``write(...)`` lays it out and emits, for the same work:

- ``pipeline.py`` for async-pipeline: one task per package (``pNNNN.build``) with
  ``depends_on``, ``inputs``, ``outputs`` and ``cache=True``, and a job ``build`` that
  targets every leaf package (one nothing depends on);
- Turborepo: a root ``package.json`` with npm workspaces, its ``package-lock.json``,
  ``turbo.json`` (``build`` with ``dependsOn: ["^build"]``, ``inputs``, ``outputs``) and a
  ``package.json`` per package with its ``build`` script and workspace dependencies;
- ``dodo.py`` for doit: one ``build:pNNNN`` subtask per package with ``file_dep``,
  ``targets`` and ``task_dep``;
- ``monorepo.json``: the plan itself (packages, dependencies, commands) for benchmarks
  that drive the commands directly.

Every package holds ``src/mNN.py`` filler files of exactly ``--bytes-per-file`` bytes.
Its build runs from the package directory, the same command for every runner::

    mkdir -p dist && cat src/*.py > dist/bundle.txt \
        && cksum ../p0003/dist/bundle.txt ../p0007/dist/bundle.txt >> dist/bundle.txt

so a package's output depends on its sources and on its dependencies' outputs (Turborepo
runs scripts from the package directory; the other two get a ``cd packages/pNNNN && ``
prefix). With ``trivial=True`` (``--trivial``) the build is ``echo pNNNN > stamp.txt``
instead: a near-empty task for measuring a runner's own overhead.

Run it::

    .venv/bin/python bench/monorepo.py OUT_DIR --packages 1000 --files-per-package 20 \
        --bytes-per-file 3000 --seed 0 [--git] [--trivial]

(1,000 x 20 x 3,000 is 20,000 source files, 60 MB.) ``OUT_DIR`` must be absent or empty.
With ``--git`` the workspace is committed (fixed author and date, so the commit id is
deterministic too) and packed. The same arguments always produce the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Monorepo", "Package", "plan", "write"]

MAX_DEPS = 3
SCOPE = "@mono"
ROOT_NAME = "monorepo"
# Turborepo 2 requires the root package.json to name its package manager.
DEFAULT_PACKAGE_MANAGER = "npm@10.9.2"
BUNDLE = "dist/bundle.txt"
STAMP = "stamp.txt"
LINE_HEX = 76
GIT_IDENTITY = ("bench", "bench@example.invalid", "2000-01-01T00:00:00+0000")
GITIGNORE = "node_modules/\n.turbo/\n.async/\n.doit.db*\ndist/\nstamp.txt\n"


@dataclass(frozen=True, slots=True)
class Package:
    """One workspace package; paths in ``inputs`` and ``outputs`` are package-relative."""

    name: str
    deps: tuple[str, ...]
    files: tuple[str, ...]
    command: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def dir(self) -> str:
        return f"packages/{self.name}"

    @property
    def npm_name(self) -> str:
        return f"{SCOPE}/{self.name}"

    @property
    def root_command(self) -> str:
        """The build command as run from the repository root."""
        return f"cd {self.dir} && {self.command}"


@dataclass(frozen=True, slots=True)
class Monorepo:
    packages: tuple[Package, ...]
    seed: int
    bytes_per_file: int
    trivial: bool = False

    @property
    def leaves(self) -> tuple[str, ...]:
        """Packages no other package depends on: the build job's targets."""
        used = {d for p in self.packages for d in p.deps}
        return tuple(p.name for p in self.packages if p.name not in used)

    def to_json(self) -> dict[str, object]:
        return {
            "seed": self.seed,
            "bytesPerFile": self.bytes_per_file,
            "leaves": list(self.leaves),
            "packages": [
                {
                    "name": p.name,
                    "dir": p.dir,
                    "deps": list(p.deps),
                    "files": [f"src/{f}" for f in p.files],
                    "command": p.command,
                    "rootCommand": p.root_command,
                    "outputs": list(p.outputs),
                }
                for p in self.packages
            ],
        }


def plan(
    packages: int = 1000,
    files_per_package: int = 20,
    bytes_per_file: int = 3000,
    seed: int = 0,
    *,
    trivial: bool = False,
) -> Monorepo:
    """Draw the package graph for ``seed``; nothing is written."""
    if packages < 1 or files_per_package < 1 or bytes_per_file < 1:
        raise ValueError("packages, files per package and bytes per file must be >= 1")
    rng = random.Random(f"{seed}:graph")
    width = max(4, len(str(packages - 1)))
    file_width = max(2, len(str(files_per_package - 1)))
    names = [f"p{i:0{width}d}" for i in range(packages)]
    files = tuple(f"m{j:0{file_width}d}.py" for j in range(files_per_package))
    drawn: list[Package] = []
    for i, name in enumerate(names):
        count = rng.randint(0, min(MAX_DEPS, i))
        deps = tuple(names[d] for d in sorted(rng.sample(range(i), count)))
        if trivial:
            command, outputs = f"echo {name} > {STAMP}", (STAMP,)
        else:
            command = f"mkdir -p dist && cat src/*.py > {BUNDLE}"
            if deps:
                bundles = " ".join(f"../{d}/{BUNDLE}" for d in deps)
                command += f" && cksum {bundles} >> {BUNDLE}"
            outputs = (BUNDLE,)
        inputs = ("src/**", *(f"../{d}/{BUNDLE}" for d in deps)) if not trivial else ("src/**",)
        drawn.append(Package(name, deps, files, command, inputs, outputs))
    return Monorepo(tuple(drawn), seed, bytes_per_file, trivial)


def _repo_path(package: Package, relative: str) -> str:
    """A package-relative path (``../pX/...`` allowed) as a repository-relative one."""
    parts = f"{package.dir}/{relative}".split("/")
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        else:
            out.append(part)
    return "/".join(out)


def _filler(rng: random.Random, header: str, size: int) -> bytes:
    """Exactly ``size`` bytes: a docstring line, then comment lines of random hex."""
    hex_chars = rng.randbytes(size // 2 + 1).hex()
    lines = [hex_chars[k : k + LINE_HEX] for k in range(0, len(hex_chars), LINE_HEX)]
    text = header + "".join(f"# {line}\n" for line in lines)
    return text[: size - 1].encode() + b"\n"


def _q(value: object) -> str:
    """A Python literal for str / list-of-str values, in double quotes like the house style."""
    return json.dumps(value)


def pipeline_source(repo: Monorepo) -> str:
    lines = [
        f'"""Generated by bench/monorepo.py (seed {repo.seed}); do not edit."""',
        "",
        "from async_pipeline import define_pipeline, job, sh, task",
        "",
        "pipeline = define_pipeline(",
        f"    name={_q(ROOT_NAME)},",
        "    tasks={",
    ]
    for p in repo.packages:
        lines += [
            f"        {_q(p.name)}: {{",
            '            "build": task(',
            f"                sh({_q(p.root_command)}),",
            f"                description={_q('Build ' + p.name)},",
            f"                depends_on={_q([f'{d}.build' for d in p.deps])},",
            f"                inputs={_q([_repo_path(p, i) for i in p.inputs])},",
            f"                outputs={_q([_repo_path(p, o) for o in p.outputs])},",
            "                cache=True,",
            "            ),",
            "        },",
        ]
    lines += [
        "    },",
        "    jobs={",
        '        "build": job(',
        f"            target={_q([f'{leaf}.build' for leaf in repo.leaves])},",
        '            description="Build every package",',
        "        ),",
        "    },",
        ")",
        "",
    ]
    return "\n".join(lines)


def dodo_source(repo: Monorepo) -> str:
    table = "\n".join(
        f"    ({_q(p.name)}, {_q(list(p.deps))}, {_q(p.root_command)})," for p in repo.packages
    )
    files = _q(list(repo.packages[0].files))
    output = repo.packages[0].outputs[0]
    return f'''"""Generated by bench/monorepo.py (seed {repo.seed}); do not edit.

Run with doit from this directory: ``doit -n 2 -P thread build``.
"""

DOIT_CONFIG = {{"default_tasks": ["build"], "verbosity": 0}}

FILES = {files}

# (package, dependencies, build command run from the repository root)
PACKAGES = [
{table}
]


def task_build():
    """Build every package."""
    for name, deps, command in PACKAGES:
        yield {{
            "name": name,
            "actions": [command],
            "file_dep": [f"packages/{{name}}/src/{{f}}" for f in FILES]
            + [f"packages/{{d}}/{output}" for d in deps],
            "targets": [f"packages/{{name}}/{output}"],
            "task_dep": [f"build:{{d}}" for d in deps],
            "clean": True,
        }}
'''


def _json(data: object) -> str:
    return json.dumps(data, indent=2) + "\n"


def turbo_files(repo: Monorepo, package_manager: str) -> dict[str, str]:
    """Root ``package.json``, ``package-lock.json``, ``turbo.json`` and one per package."""
    out = {
        "package.json": _json(
            {
                "name": ROOT_NAME,
                "private": True,
                "packageManager": package_manager,
                "workspaces": ["packages/*"],
            }
        ),
        "turbo.json": _json(
            {
                "$schema": "https://turborepo.com/schema.json",
                "tasks": {
                    "build": {
                        "dependsOn": ["^build"],
                        "inputs": ["src/**"],
                        "outputs": [STAMP] if repo.trivial else ["dist/**"],
                    }
                },
            }
        ),
    }
    lock: dict[str, object] = {"": {"name": ROOT_NAME, "workspaces": ["packages/*"]}}
    for p in repo.packages:
        lock[f"node_modules/{p.npm_name}"] = {"resolved": p.dir, "link": True}
    for p in repo.packages:
        manifest: dict[str, object] = {
            "name": p.npm_name,
            "version": "0.0.0",
            "private": True,
            "scripts": {"build": p.command},
        }
        entry: dict[str, object] = {"name": p.npm_name, "version": "0.0.0"}
        if p.deps:
            deps = {f"{SCOPE}/{d}": "*" for d in p.deps}
            manifest["dependencies"] = deps
            entry["dependencies"] = deps
        out[f"{p.dir}/package.json"] = _json(manifest)
        lock[p.dir] = entry
    out["package-lock.json"] = _json(
        {"name": ROOT_NAME, "lockfileVersion": 3, "requires": True, "packages": lock}
    )
    return out


def write(
    repo: Monorepo,
    out_dir: Path,
    *,
    package_manager: str = DEFAULT_PACKAGE_MANAGER,
    git: bool = False,
) -> None:
    """Lay ``repo`` out in ``out_dir`` (absent or empty); with ``git``, commit it."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty")
    rng = random.Random(f"{repo.seed}:content")
    texts = {
        ".gitignore": GITIGNORE,
        "pipeline.py": pipeline_source(repo),
        "dodo.py": dodo_source(repo),
        "monorepo.json": _json(repo.to_json()),
        **turbo_files(repo, package_manager),
    }
    for p in repo.packages:
        src = out_dir / p.dir / "src"
        src.mkdir(parents=True)
        for name in p.files:
            header = f'"""{p.name}/src/{name}: generated filler."""\n'
            (src / name).write_bytes(_filler(rng, header, repo.bytes_per_file))
    for relative, text in texts.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    if git:
        _commit(out_dir)


def _commit(out_dir: Path) -> None:
    name, email, date = GIT_IDENTITY
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_COMMITTER_DATE": date,
    }
    quiet = {"cwd": out_dir, "env": env, "check": True, "stdout": subprocess.DEVNULL}
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q"], **quiet)
    subprocess.run(["git", "add", "-A"], **quiet)
    # With tens of thousands of loose objects, `git commit` would start `git gc --auto` in
    # the background, racing clones of the workspace and eating CPU during benchmarks: pack
    # once, in the foreground, as a cloned repository would be.
    subprocess.run(
        [
            "git",
            *("-c", "commit.gpgsign=false", "-c", "gc.auto=0"),
            *("commit", "-q", "-m", "Synthetic monorepo"),
        ],
        **quiet,
    )
    subprocess.run(["git", "gc", "-q"], **quiet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a deterministic synthetic monorepo (see the module docstring)."
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--files-per-package", type=int, default=20)
    parser.add_argument("--bytes-per-file", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--git", action="store_true", help="git init and commit everything")
    parser.add_argument(
        "--trivial", action="store_true", help="near-empty builds: echo NAME > stamp.txt"
    )
    parser.add_argument("--package-manager", default=DEFAULT_PACKAGE_MANAGER)
    args = parser.parse_args(argv)
    repo = plan(
        args.packages, args.files_per_package, args.bytes_per_file, args.seed, trivial=args.trivial
    )
    try:
        write(repo, args.out_dir, package_manager=args.package_manager, git=args.git)
    except FileExistsError as exc:
        parser.error(str(exc))
    files = args.packages * args.files_per_package
    print(
        f"{args.out_dir}: {args.packages} packages ({len(repo.leaves)} leaves), {files} source "
        f"files, {files * args.bytes_per_file / 1e6:.1f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
