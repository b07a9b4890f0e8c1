"""Sandbox and execution-profile declarations. The host is the default; these are opt-in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from async_pipeline.core._validate import (
    MISSING,
    expect_choice,
    expect_mapping,
    expect_str,
    expect_str_list,
    invalid,
    reject_unknown,
    require,
)

__all__ = [
    "PROVIDERS",
    "ContainerSandbox",
    "DockerSandbox",
    "ExecutionProfile",
    "LimaSandbox",
    "Sandbox",
    "Volume",
    "execution",
    "sandbox",
]

PROVIDERS = ("auto", "docker", "apple-container", "lima")


@dataclass(frozen=True, slots=True)
class LimaSandbox:
    vm: str


@dataclass(frozen=True, slots=True)
class DockerSandbox:
    image: str
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class Volume:
    source: str
    target: str


@dataclass(frozen=True, slots=True)
class ContainerSandbox:
    """OCI image intent, run by a provider chosen at run time."""

    image: str
    workdir: str | None = None
    volumes: tuple[Volume, ...] = ()


Sandbox = LimaSandbox | DockerSandbox | ContainerSandbox


@dataclass(frozen=True, slots=True)
class ExecutionProfile:
    """Where tasks run: ``local`` for explicit local runs, ``github`` adds runner defaults."""

    kind: str
    sandbox: str | None = None
    provider: str = "auto"
    runs_on: tuple[str, ...] = ()


class _Sandbox:
    """The ``sandbox`` helper namespace."""

    def lima(self, *, vm: str = MISSING, **unknown: object) -> LimaSandbox:
        reject_unknown(unknown, ("vm",), "sandbox.lima", "sandbox.lima()")
        require(vm, "sandbox.lima.vm", "the Lima VM name")
        return LimaSandbox(expect_str(vm, "sandbox.lima.vm"))

    def docker(
        self, *, image: str = MISSING, cwd: str | None = None, **unknown: object
    ) -> DockerSandbox:
        reject_unknown(unknown, ("image", "cwd"), "sandbox.docker", "sandbox.docker()")
        require(image, "sandbox.docker.image", "an image such as 'python:3.12'")
        return DockerSandbox(
            expect_str(image, "sandbox.docker.image"),
            None if cwd is None else expect_str(cwd, "sandbox.docker.cwd"),
        )

    def container(
        self,
        *,
        image: str = MISSING,
        workdir: str | None = None,
        volumes: Sequence[Mapping[str, str]] = (),
        **unknown: object,
    ) -> ContainerSandbox:
        reject_unknown(
            unknown, ("image", "workdir", "volumes"), "sandbox.container", "sandbox.container()"
        )
        require(image, "sandbox.container.image", "an OCI image such as 'python:3.12'")
        if not isinstance(volumes, list | tuple):
            raise invalid("sandbox.container.volumes", "a list of {source, target}", volumes)
        checked: list[Volume] = []
        for i, item in enumerate(volumes):
            path = f"sandbox.container.volumes[{i}]"
            mapping = expect_mapping(item, path)
            reject_unknown(mapping, ("source", "target"), path, "volume")
            checked.append(
                Volume(
                    expect_str(mapping.get("source"), f"{path}.source"),
                    expect_str(mapping.get("target"), f"{path}.target"),
                )
            )
        return ContainerSandbox(
            expect_str(image, "sandbox.container.image"),
            None if workdir is None else expect_str(workdir, "sandbox.container.workdir"),
            tuple(checked),
        )


class _Execution:
    """The ``execution`` helper namespace."""

    def local(
        self, *, sandbox: str | None = None, provider: str = "auto", **unknown: object
    ) -> ExecutionProfile:
        reject_unknown(unknown, ("sandbox", "provider"), "execution.local", "execution.local()")
        return ExecutionProfile(
            "local",
            None if sandbox is None else expect_str(sandbox, "execution.local.sandbox"),
            expect_choice(provider, "execution.local.provider", PROVIDERS),
        )

    def github(
        self,
        *,
        sandbox: str | None = None,
        provider: str = "auto",
        runs_on: str | Sequence[str] = "ubuntu-latest",
        **unknown: object,
    ) -> ExecutionProfile:
        reject_unknown(
            unknown, ("sandbox", "provider", "runs_on"), "execution.github", "execution.github()"
        )
        return ExecutionProfile(
            "github",
            None if sandbox is None else expect_str(sandbox, "execution.github.sandbox"),
            expect_choice(provider, "execution.github.provider", PROVIDERS),
            expect_str_list(runs_on, "execution.github.runs_on"),
        )


sandbox = _Sandbox()
execution = _Execution()
