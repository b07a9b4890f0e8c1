"""Source declarations: other repositories whose pipelines compose into this graph.

Declaring a source never clones, fetches or prepares it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from async_pipeline.core._validate import (
    MISSING,
    expect_bool,
    expect_str,
    invalid,
    reject_unknown,
    require,
)
from async_pipeline.core.steps import DeferredShell, FunctionStep, Shell

__all__ = ["GitSource", "PathSource", "Source", "source"]

PrepareStep = Shell | DeferredShell | FunctionStep


@dataclass(frozen=True, slots=True)
class PathSource:
    """A repository on the local filesystem, relative to this pipeline's directory."""

    path: str
    writable: bool = False
    prepare: tuple[PrepareStep, ...] = ()
    pipeline: str | None = None


@dataclass(frozen=True, slots=True)
class GitSource:
    """A git repository checked out (warm) under ``.async/sources`` when a run needs it."""

    url: str
    ref: str = "main"
    prepare: tuple[PrepareStep, ...] = ()
    pipeline: str | None = None


Source = PathSource | GitSource


def _prepare(steps: Sequence[object] | None, path: str) -> tuple[PrepareStep, ...]:
    if steps is None:
        return ()
    if not isinstance(steps, list | tuple):
        raise invalid(path, "a list of sh(...) steps", steps)
    checked: list[PrepareStep] = []
    for i, step in enumerate(steps):
        if isinstance(step, Shell | DeferredShell | FunctionStep):
            checked.append(step)
        elif callable(step):
            checked.append(FunctionStep(step))
        else:
            raise invalid(f"{path}[{i}]", "a sh(...) step or a function", step)
    return tuple(checked)


class _Source:
    """The ``source`` helper namespace."""

    def path(
        self,
        *,
        path: str = MISSING,
        writable: bool = False,
        prepare: Sequence[object] | None = None,
        pipeline: str | None = None,
        **unknown: object,
    ) -> PathSource:
        reject_unknown(
            unknown, ("path", "writable", "prepare", "pipeline"), "source.path", "source.path()"
        )
        require(path, "source.path.path", "the repository's path relative to this pipeline")
        steps = _prepare(prepare, "source.path.prepare")
        if steps and not expect_bool(writable, "source.path.writable"):
            raise invalid(
                "source.path.writable",
                "True when prepare steps are declared (they write)",
                writable,
            )
        return PathSource(
            expect_str(path, "source.path.path"),
            expect_bool(writable, "source.path.writable"),
            steps,
            None if pipeline is None else expect_str(pipeline, "source.path.pipeline"),
        )

    def git(
        self,
        *,
        url: str = MISSING,
        ref: str = "main",
        prepare: Sequence[object] | None = None,
        pipeline: str | None = None,
        **unknown: object,
    ) -> GitSource:
        reject_unknown(unknown, ("url", "ref", "prepare", "pipeline"), "source.git", "source.git()")
        require(url, "source.git.url", "the repository URL")
        return GitSource(
            expect_str(url, "source.git.url"),
            expect_str(ref, "source.git.ref"),
            _prepare(prepare, "source.git.prepare"),
            None if pipeline is None else expect_str(pipeline, "source.git.pipeline"),
        )


source = _Source()
