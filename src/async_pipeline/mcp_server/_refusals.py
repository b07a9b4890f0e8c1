"""Say why the SDK refused a request before any handler of ours saw it.

The SDK (2.3.0) answers both a request before ``initialize`` and params that do not validate
with the same ``-32602 "Invalid request parameters"`` and empty data, so a host cannot tell
"send initialize first" from "``name`` must be a string". :func:`explain_refusals` is a
server middleware (the SDK's ``Server.middleware`` seam: it wraps the init gate and params
validation) that keeps the code and replaces the message with the reason: the session is
not initialized, or which field is wrong and how. Pydantic's own text is used only for the
field path and its short complaint, never the input value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

__all__ = ["NOT_INITIALIZED", "describe", "explain_refusals"]

NOT_INITIALIZED = "Invalid request: the session is not initialized; send initialize first"

# What the SDK's init gate raises ("pinned compat" in mcp.server.runner); a params validation
# error reaches a middleware as a ValidationError, so inside it this shape is only the gate.
_GATE = types.ErrorData(code=types.INVALID_PARAMS, message="Invalid request parameters", data="")
# Pydantic tags an error inside a union with the member it tried ('str', 'int', a model's
# name, 'function-after[...]'): not a field, so it is left out of the path.
_UNION_MEMBER = re.compile(r"^(?:str|int|float|bool|none|[a-z][a-z-]*\[.*\]|[A-Z]\w*)$")
_MAX_FIELDS = 3
_MAX_PROBLEM = 200
_SHOULD = "Input should be "


async def explain_refusals(
    ctx: ServerRequestContext[Any, Any], call_next: CallNext
) -> HandlerResult:
    """Run the rest of the chain; give its vague refusals a reason."""
    try:
        return await call_next(ctx)
    except ValidationError as exc:
        raise MCPError(code=types.INVALID_PARAMS, message=describe(exc)) from None
    except MCPError as exc:
        if exc.error == _GATE:
            raise MCPError(code=types.INVALID_PARAMS, message=NOT_INITIALIZED) from None
        raise


def describe(exc: ValidationError) -> str:
    """``Invalid params: <field>: <problem>`` for the first few fields that failed."""
    problems: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        problems.setdefault(_path(error["loc"]), []).append(error["msg"][:_MAX_PROBLEM])
    parts = [f"{path}: {_either(found)}" for path, found in list(problems.items())[:_MAX_FIELDS]]
    return "Invalid params: " + "; ".join(parts)


def _path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _UNION_MEMBER.match(part):
            path += f".{part}" if path else part
    return path or "params"


def _either(problems: list[str]) -> str:
    # The members of a union each complain; "a valid string or a valid integer" reads better.
    rest = [p.removeprefix(_SHOULD) if p.startswith(_SHOULD) else p for p in problems[1:]]
    return " or ".join([problems[0], *rest])
