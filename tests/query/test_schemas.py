"""The committed JSON Schemas are exactly what the query models generate."""

from __future__ import annotations

from async_pipeline.query.schemas import SCHEMAS, generate, render
from tests.conftest import SCHEMAS as SCHEMA_DIR


def test_committed_schemas_are_current() -> None:
    stale = [
        name
        for name, schema in generate().items()
        if not (SCHEMA_DIR / name).is_file()
        or (SCHEMA_DIR / name).read_text(encoding="utf-8") != render(schema)
    ]
    assert not stale, f"regenerate with `python -m async_pipeline.query.schemas schemas`: {stale}"


def test_no_schema_file_is_left_without_a_model() -> None:
    on_disk = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert on_disk == set(SCHEMAS)
