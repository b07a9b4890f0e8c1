"""JSON Schemas of the query answers, generated from ``query.models`` into ``schemas/``.

Regenerate after changing a model: ``python -m async_pipeline.query.schemas schemas``.
A test fails while the committed files differ from what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from async_pipeline.query.models import (
    ContextPack,
    Explanation,
    Graph,
    InputDiff,
    PipelineMetadata,
    RunDetails,
    RunList,
    TaskList,
)
from async_pipeline.runner.models import ExecutionRecord

__all__ = ["SCHEMAS", "generate", "render"]

SCHEMAS: dict[str, type[BaseModel]] = {
    "metadata.schema.json": PipelineMetadata,
    "task-list.schema.json": TaskList,
    "graph.schema.json": Graph,
    "explanation.schema.json": Explanation,
    "run-list.schema.json": RunList,
    "run-details.schema.json": RunDetails,
    "input-diff.schema.json": InputDiff,
    "execution-record.schema.json": ExecutionRecord,
    "context-pack.schema.json": ContextPack,
}


def generate() -> dict[str, dict[str, Any]]:
    """File name to schema, for every published answer shape."""
    result: dict[str, dict[str, Any]] = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema(by_alias=True, mode="serialization")
        result[name] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:async-pipeline:schema:{name.removesuffix('.schema.json')}",
            **schema,
        }
    return result


def render(schema: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "schemas")
    target.mkdir(parents=True, exist_ok=True)
    for name, schema in generate().items():
        (target / name).write_text(render(schema), encoding="utf-8")
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
