"""Which profile and model an agent step uses in this run, from the task's environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from async_pipeline.core._validate import nearest
from async_pipeline.core.env import EnvVar
from async_pipeline.core.model import AgentProfile
from async_pipeline.core.steps import AgentStep
from async_pipeline.errors import PipelineError
from async_pipeline.runner.env import resolve_var

__all__ = ["ResolvedAgent", "agent_identity", "resolve_agent"]


@dataclass(frozen=True)
class ResolvedAgent:
    profile_id: str
    profile: AgentProfile
    model: str


def _value(value: str | EnvVar, env: Mapping[str, str], what: str) -> str:
    return value if isinstance(value, str) else resolve_var(value, env, what)


def resolve_agent(
    step: AgentStep, env: Mapping[str, str], agents: Mapping[str, AgentProfile]
) -> ResolvedAgent:
    """The step's profile (``use``, possibly from ``env.var``) and model, or AGENT_UNKNOWN."""
    profile_id = _value(step.use, env, "agent use")
    profile = agents.get(profile_id)
    if profile is None:
        guess = nearest(profile_id, agents)
        raise PipelineError(
            "ASYNC_PIPELINE_AGENT_UNKNOWN",
            f"agent profile {profile_id!r} is not declared in agents"
            + (" (declared: " + ", ".join(sorted(agents)) + ")" if agents else ""),
            hint=f'did you mean "{guess}"?' if guess else None,
        )
    return ResolvedAgent(
        profile_id, profile, _value(profile.model, env, f"agents.{profile_id}.model")
    )


def agent_identity(
    step: AgentStep, env: Mapping[str, str], agents: Mapping[str, AgentProfile]
) -> str:
    """What an agent step contributes to its cache key: profile id, model and prompt.

    Never the adapter's command: moving the agent's binary must not invalidate the cache.
    """
    resolved = resolve_agent(step, env, agents)
    return "\0".join((resolved.profile_id, resolved.model, step.prompt, step.stdout_to or ""))
