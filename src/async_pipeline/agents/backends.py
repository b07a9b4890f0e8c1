"""Agent backends: where a prompt goes. A CLI adapter runs through the task's executor;
an API backend (``api="anthropic"``) calls a hosted model over HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from async_pipeline.core.model import AgentProfile

__all__ = ["AgentBackend", "AgentBackendError", "AgentReply", "backend_for"]


@dataclass(frozen=True)
class AgentReply:
    """The agent's answer, and the request/response as they go into the transcript."""

    text: str
    request: Mapping[str, Any] = field(default_factory=dict)
    response: Mapping[str, Any] = field(default_factory=dict)


class AgentBackendError(Exception):
    """A backend call failed; ``code`` is an ASYNC_PIPELINE_* code for the task result."""

    def __init__(self, code: str, message: str, response: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.response = dict(response or {})


class AgentBackend(Protocol):
    """Sends one prompt to a model and returns its reply."""

    async def complete(
        self,
        *,
        prompt: str,
        model: str,
        profile: AgentProfile,
        env: Mapping[str, str],
        timeout_ms: int | None,
    ) -> AgentReply: ...


def backend_for(api: str) -> AgentBackend:
    """The backend behind ``api=`` (imported only when a profile uses it)."""
    if api == "anthropic":
        from async_pipeline.agents.anthropic_backend import AnthropicBackend

        return AnthropicBackend()
    raise AgentBackendError("ASYNC_PIPELINE_AGENT_UNKNOWN", f"no agent backend {api!r}")
