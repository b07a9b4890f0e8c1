"""Applying a command policy: may this tool spawn ``argv`` on the user's behalf?

Task shells are not governed here (they run through the run's executor); this covers the
commands the tool starts itself: agent adapters and CLI invocations made through
``run_pipeline_cli``. Rules are tried in order and the first that matches decides;
unmatched commands get the fallback (allow unless the policy says otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from async_pipeline.core.commands import (
    Allow,
    CommandPolicy,
    CommandRule,
    Deny,
    Mock,
    RequireEnvironment,
    RuleAction,
)
from async_pipeline.redaction import Redactor

__all__ = ["ENVIRONMENT_VARIABLE", "Decision", "decide", "decision_record"]

ENVIRONMENT_VARIABLE = "ASYNC_PIPELINE_ENVIRONMENT"


@dataclass(frozen=True)
class Decision:
    """What to do with a command: ``allow``, ``deny`` (with a code) or ``mock`` (a result)."""

    verdict: str
    argv: tuple[str, ...]
    rule: int | None  # index of the matching rule, None for the fallback
    code: str | None = None
    message: str | None = None
    mock: Mock | None = None


def _matches(rule: CommandRule, argv: tuple[str, ...]) -> bool:
    if rule.match == "exact":
        return argv == rule.argv
    return argv[: len(rule.argv)] == rule.argv


def _apply(
    action: RuleAction, argv: tuple[str, ...], rule: int | None, env: Mapping[str, str]
) -> Decision:
    shown = " ".join(argv)
    if isinstance(action, Allow):
        return Decision("allow", argv, rule)
    if isinstance(action, Mock):
        return Decision("mock", argv, rule, mock=action)
    if isinstance(action, RequireEnvironment):
        current = env.get(ENVIRONMENT_VARIABLE, "")
        if current in action.environments:
            return Decision("allow", argv, rule)
        return Decision(
            "deny",
            argv,
            rule,
            "ASYNC_PIPELINE_COMMAND_DENIED",
            f"{shown!r} may run only when {ENVIRONMENT_VARIABLE} is one of "
            + ", ".join(action.environments)
            + (f" (it is {current!r})" if current else " (it is not set)"),
        )
    assert isinstance(action, Deny)
    return Decision(
        "deny", argv, rule, "ASYNC_PIPELINE_COMMAND_DENIED", f"the command policy denies {shown!r}"
    )


def decide(policy: CommandPolicy | None, argv: Sequence[str], env: Mapping[str, str]) -> Decision:
    """The policy's decision for ``argv`` (no policy: allow)."""
    words = tuple(argv)
    if policy is None:
        return Decision("allow", words, None)
    for index, rule in enumerate(policy.rules):
        if _matches(rule, words):
            return _apply(rule.action, words, index, env)
    return _apply(policy.fallback, words, None, env)


def decision_record(
    decision: Decision,
    policy: CommandPolicy,
    redactor: Redactor,
    *,
    task: str | None = None,
    stdout: bytes = b"",
    stderr: bytes = b"",
    exit_code: int | None = None,
) -> dict[str, Any]:
    """The decision as it goes into the run record, output capped and redacted as declared."""

    def excerpt(data: bytes) -> str:
        if policy.redact_secrets:
            data = redactor.redact(data)
        if policy.max_output_bytes is not None and len(data) > policy.max_output_bytes:
            data = data[len(data) - policy.max_output_bytes :]
        return data.decode("utf-8", errors="replace")

    argv = [redactor.redact_text(w) if policy.redact_secrets else w for w in decision.argv]
    return {
        "argv": argv,
        "decision": decision.verdict,
        "rule": decision.rule,
        "task": task,
        "code": decision.code,
        "exitCode": exit_code,
        "stdout": excerpt(stdout),
        "stderr": excerpt(stderr),
    }
