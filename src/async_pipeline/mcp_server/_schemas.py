"""JSON Schemas for the tools: output schemas from the query models, input checking.

Output schemas are generated from the same pydantic models that describe the CLI's
``--format json`` answers (``query/models.py``), so a tool can only advertise the shape
the CLI prints. Input schemas are written by hand in ``_tools.py`` and enforced here with
``jsonschema``: the SDK's low-level server passes arguments through unchecked.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from async_pipeline.errors import UsageError

__all__ = ["MAX_INTEGER", "check_arguments", "output_schema", "strict_object"]

_DEFS = "#/$defs/"

MAX_INTEGER = 2**31 - 1
"""The largest value any integer argument accepts: every one declares a ``maximum``."""


def strict_object(
    properties: Mapping[str, Mapping[str, Any]], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """An input schema that rejects unknown keys: hosts learn typos instead of silent defaults."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: dict(spec) for name, spec in properties.items()},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


@functools.cache
def output_schema(model_path: str) -> dict[str, Any]:
    """The serialization schema of ``module:Class``, with an object at its root.

    Imported by path so that listing tools is the first (and only) time pydantic builds
    these schemas. A recursive model (``PipelineMetadata``) is emitted by pydantic as a
    bare ``$ref`` into ``$defs``; MCP wants ``type: object`` at the root, so the referenced
    definition is copied up and ``$defs`` kept for the nested references.
    """
    import importlib

    module_name, _, name = model_path.partition(":")
    model = getattr(importlib.import_module(module_name), name)
    schema: dict[str, Any] = model.model_json_schema(by_alias=True, mode="serialization")
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS):
        definition = schema["$defs"][ref.removeprefix(_DEFS)]
        schema = {**definition, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


_VALIDATORS: dict[str, Any] = {}
_MAX_DETAIL = 200


def check_arguments(
    tool: str, schema: dict[str, Any], arguments: Mapping[str, Any]
) -> dict[str, Any]:
    """``arguments`` checked against ``schema``, integers as ``int``s.

    Raise ``ASYNC_PIPELINE_USAGE`` naming the first argument that breaks ``schema``.
    """
    # jsonschema ships no type information and its stubs are not a dependency of ours.
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
    from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

    validator = _VALIDATORS.get(tool)
    if validator is None:
        validator = _VALIDATORS[tool] = Draft202012Validator(schema)
    error = best_match(validator.iter_errors(dict(arguments)))
    if error is None:
        return _with_ints(schema, arguments)
    where = ".".join(str(part) for part in error.absolute_path)
    allowed = ", ".join(schema.get("properties", {})) or "none"
    if error.validator == "additionalProperties":
        unknown = sorted(set(arguments) - set(schema.get("properties", {})))
        names = ", ".join(repr(name[:_MAX_DETAIL]) for name in unknown[:10])
        message = f"{tool}: unknown argument(s) {names}"
    elif error.validator == "required":
        message = f"{tool}: {error.message}"
    else:
        # jsonschema quotes the offending value; a host can send megabytes, answer with a taste.
        detail = error.message
        if len(detail) > _MAX_DETAIL:
            detail = detail[:_MAX_DETAIL] + "..."
        message = f"{tool}: argument {where or '(arguments)'}: {detail}"
    raise UsageError(
        "ASYNC_PIPELINE_USAGE",
        message,
        path=where or None,
        hint=f"arguments of {tool}: {allowed}",
    )


def _with_ints(schema: dict[str, Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    # JSON Schema counts 1.0 as an integer (and JSON parsers may hand one over as a float),
    # so a valid "integer" can be a whole float here; its bounds are already checked.
    properties = schema.get("properties", {})
    return {
        name: int(value)
        if isinstance(value, float) and properties.get(name, {}).get("type") == "integer"
        else value
        for name, value in arguments.items()
    }
