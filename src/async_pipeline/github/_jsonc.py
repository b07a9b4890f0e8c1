"""Edit one string-valued section of a JSON or JSONC manifest in place, keeping the rest.

Task sync must not reformat a user's package.json or lose the comments of a deno.jsonc, so
instead of load-and-dump it tokenizes the text (strings, comments, punctuation), finds the
section object (``scripts`` or ``tasks``) and splices only the entries it changes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from async_pipeline.errors import PipelineError

__all__ = ["Member", "members", "set_entries"]

_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"'  # string
    r"|//[^\n]*|/\*.*?\*/"  # comments
    r"|[{}\[\]:,]"  # punctuation
    r"|[^\s{}\[\]:,\"/]+",  # numbers, true, false, null
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Member:
    """``"key": value`` in an object: where the key starts and the value spans (offsets)."""

    key: str
    start: int
    value_start: int
    value_end: int
    value: object


def _tokens(text: str, where: str) -> list[tuple[str, int, int]]:
    tokens = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if not token.startswith(("//", "/*")):
            tokens.append((token, match.start(), match.end()))
    if not tokens or tokens[0][0] != "{":
        raise PipelineError("ASYNC_PIPELINE_INVALID_VALUE", f"{where} is not a JSON object")
    return tokens


def _skip(tokens: list[tuple[str, int, int]], i: int) -> int:
    """Index just past the value starting at token ``i``."""
    if tokens[i][0] not in "{[":
        return i + 1
    depth = 0
    while i < len(tokens):
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(tokens[i][0], 0)
        i += 1
        if depth == 0:
            return i
    raise ValueError("unbalanced brackets")


def _object(tokens: list[tuple[str, int, int]], i: int) -> tuple[list[Member], int]:
    """The members of the object opening at token ``i``, and the index of its ``}``."""
    found: list[Member] = []
    i += 1
    while tokens[i][0] != "}":
        if tokens[i][0] == ",":
            i += 1
            continue
        key, start, _ = tokens[i]
        end = _skip(tokens, i + 2)
        value_text = tokens[i + 2][0] if end == i + 3 else None
        found.append(
            Member(
                json.loads(key),
                start,
                tokens[i + 2][1],
                tokens[end - 1][2],
                json.loads(value_text) if value_text and value_text[0] == '"' else None,
            )
        )
        i = end
    return found, i


def members(text: str, section: str, where: str) -> list[Member] | None:
    """The members of top-level ``section``, or None when the manifest has no such object."""
    try:
        tokens = _tokens(text, where)
        root, _ = _object(tokens, 0)
        for member in root:
            if member.key == section:
                index = next(k for k, t in enumerate(tokens) if t[1] == member.value_start)
                if tokens[index][0] != "{":
                    return None
                return _object(tokens, index)[0]
    except (IndexError, ValueError) as exc:
        raise PipelineError(
            "ASYNC_PIPELINE_INVALID_VALUE", f"{where} is not valid JSON(C): {exc}"
        ) from None
    return None


def _indent(text: str, offset: int) -> str:
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    return line[: len(line) - len(line.lstrip())]


def _entry(key: str, value: str) -> str:
    return f"{json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}"


def _remove(text: str, member: Member) -> str:
    after = re.match(r"[ \t]*,[ \t]*\n?", text[member.value_end :])
    line_start = text.rfind("\n", 0, member.start) + 1
    if after:  # not the last member: drop its whole line (with its comma)
        start = line_start if not text[line_start : member.start].strip() else member.start
        return text[:start] + text[member.value_end + after.end() :]
    before = re.search(r",\s*$", text[: member.start])  # the last one: drop the comma before
    start = before.start() if before else member.start
    return text[:start] + text[member.value_end :]


def set_entries(text: str, section: str, entries: dict[str, str | None], where: str) -> str:
    """``text`` with ``section[key]`` set to each value (``None`` removes the key)."""
    current = {m.key: m for m in members(text, section, where) or []}
    # Replacements and removals first, back to front so earlier offsets stay valid.
    for key in sorted(current, key=lambda k: -current[k].start):
        if key not in entries:
            continue
        member, value = current[key], entries[key]
        if value is None:
            text = _remove(text, member)
        else:
            encoded = json.dumps(value, ensure_ascii=False)
            text = text[: member.value_start] + encoded + text[member.value_end :]
    added = [(k, v) for k, v in entries.items() if v is not None and k not in current]
    return _insert(text, section, added, where) if added else text


def _insert(text: str, section: str, added: list[tuple[str, str]], where: str) -> str:
    existing = members(text, section, where)
    if existing:
        last = existing[-1]
        pad = _indent(text, last.start)
        body = "".join(f",\n{pad}{_entry(k, v)}" for k, v in added)
        return text[: last.value_end] + body + text[last.value_end :]
    tokens = _tokens(text, where)
    root, close = _object(tokens, 0)
    outer = _indent(text, root[0].start) if root else "  "
    holder = next((m for m in root if m.key == section), None)
    if existing is not None and holder is not None:  # an empty section object: fill it
        pad = _indent(text, holder.start)
        body = ",\n".join(f"{pad}{outer}{_entry(k, v)}" for k, v in added)
        return text[: holder.value_start] + f"{{\n{body}\n{pad}}}" + text[holder.value_end :]
    inner = ",\n".join(f"{outer * 2}{_entry(k, v)}" for k, v in added)
    block = f"{json.dumps(section)}: {{\n{inner}\n{outer}}}"
    if root:
        return text[: root[-1].value_end] + f",\n{outer}{block}" + text[root[-1].value_end :]
    return text[: tokens[0][2]] + f"\n{outer}{block}\n" + text[tokens[close][1] :]
