"""Command policy declarations: what the tool may spawn on a user's behalf outside task shells.

Rules match an argv by exact value or by prefix; the first match decides, unmatched
commands use the fallback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from async_pipeline.core._validate import (
    MISSING,
    expect_bool,
    expect_int,
    expect_mapping,
    expect_str,
    expect_str_list,
    invalid,
    reject_unknown,
    require,
)

__all__ = [
    "Allow",
    "CommandPolicy",
    "CommandRule",
    "Deny",
    "Mock",
    "RequireEnvironment",
    "RuleAction",
    "command",
]


@dataclass(frozen=True, slots=True)
class Allow:
    """Spawn the command."""


@dataclass(frozen=True, slots=True)
class Deny:
    """Refuse the command; it is never spawned."""


@dataclass(frozen=True, slots=True)
class Mock:
    """Answer with a fixed result instead of spawning."""

    code: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True, slots=True)
class RequireEnvironment:
    """Allow only when ``ASYNC_PIPELINE_ENVIRONMENT`` is one of ``environments``."""

    environments: tuple[str, ...]


RuleAction = Allow | Deny | Mock | RequireEnvironment


@dataclass(frozen=True, slots=True)
class CommandRule:
    match: str  # "prefix" or "exact"
    argv: tuple[str, ...]
    action: RuleAction


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    rules: tuple[CommandRule, ...] = ()
    fallback: RuleAction = Allow()
    record: bool = False
    max_output_bytes: int | None = None
    redact_secrets: bool = True


_ACTIONS = (Allow, Deny, Mock, RequireEnvironment)


def _action(value: object, path: str) -> RuleAction:
    if not isinstance(value, _ACTIONS):
        raise invalid(
            path,
            "command.allow(), command.deny(), command.mock(...) "
            "or command.require_environment(...)",
            value,
        )
    return value


class _Command:
    """The ``command`` helper namespace."""

    def allow(self) -> Allow:
        return Allow()

    def deny(self) -> Deny:
        return Deny()

    def mock(self, *, code: int = 0, stdout: str = "", stderr: str = "", **unknown: object) -> Mock:
        reject_unknown(unknown, ("code", "stdout", "stderr"), "command.mock", "command.mock()")
        return Mock(
            expect_int(code, "command.mock.code"),
            expect_str(stdout, "command.mock.stdout", allow_empty=True),
            expect_str(stderr, "command.mock.stderr", allow_empty=True),
        )

    def require_environment(self, *environments: str) -> RequireEnvironment:
        if not environments:
            raise invalid(
                "command.require_environment", "at least one environment name", environments
            )
        return RequireEnvironment(
            expect_str_list(list(environments), "command.require_environment")
        )

    def rule(
        self,
        *,
        action: RuleAction = MISSING,
        prefix: Sequence[str] | None = None,
        exact: Sequence[str] | None = None,
        **unknown: object,
    ) -> CommandRule:
        reject_unknown(unknown, ("action", "prefix", "exact"), "command.rule", "command.rule()")
        require(action, "command.rule.action", "command.allow(), command.deny(), ...")
        if (prefix is None) == (exact is None):
            raise invalid("command.rule", "exactly one of prefix=[...] or exact=[...]", None)
        kind, argv = ("prefix", prefix) if prefix is not None else ("exact", exact)
        words = expect_str_list(argv, f"command.rule.{kind}", allow_single=False)
        if not words:
            raise invalid(f"command.rule.{kind}", "a non-empty argv list", argv)
        return CommandRule(kind, words, _action(action, "command.rule.action"))

    def policy(
        self,
        *,
        rules: Sequence[CommandRule] = (),
        fallback: RuleAction | None = None,
        record: bool = False,
        output: Mapping[str, object] | None = None,
        **unknown: object,
    ) -> CommandPolicy:
        reject_unknown(
            unknown, ("rules", "fallback", "record", "output"), "commands", "command.policy()"
        )
        if not isinstance(rules, list | tuple):
            raise invalid("commands.rules", "a list of command.rule(...)", rules)
        for i, item in enumerate(rules):
            if not isinstance(item, CommandRule):
                raise invalid(f"commands.rules[{i}]", "command.rule(...)", item)
        out = expect_mapping(output or {}, "commands.output")
        reject_unknown(out, ("max_bytes", "redact_secrets"), "commands.output", "command output")
        max_bytes = out.get("max_bytes")
        return CommandPolicy(
            tuple(rules),
            Allow() if fallback is None else _action(fallback, "commands.fallback"),
            expect_bool(record, "commands.record"),
            None
            if max_bytes is None
            else expect_int(max_bytes, "commands.output.max_bytes", minimum=1),
            expect_bool(out.get("redact_secrets", True), "commands.output.redact_secrets"),
        )


command = _Command()
