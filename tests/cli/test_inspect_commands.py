"""metadata, list, graph, explain: JSON is the query layer's answer and matches its schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from async_pipeline import query
from async_pipeline.core.loader import load_pipeline
from tests.conftest import EXAMPLES, FIXTURES, SCHEMAS, run_cli

PIPELINES = {
    "full": FIXTURES / "full",
    "minimal": FIXTURES / "minimal",
    "quickstart": EXAMPLES / "quickstart",
}


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def _json(args: list[str], cwd: Path) -> Any:
    result = run_cli([*args, "--format", "json"], cwd)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_metadata_json_matches_schema_and_the_query_model(name: str) -> None:
    cwd = PIPELINES[name]
    data = _json(["metadata"], cwd)
    jsonschema.validate(data, _schema("metadata.schema.json"))
    assert data == _dump(query.metadata(load_pipeline(cwd=cwd)))


def test_metadata_with_sources_includes_on_disk_source_pipelines_only() -> None:
    data = _json(["metadata", "--include-sources"], FIXTURES / "full")
    jsonschema.validate(data, _schema("metadata.schema.json"))
    sources = data["sourcePipelines"]
    assert sources["admin"]["available"] is True
    assert sources["admin"]["metadata"]["pipelineName"] == "admin"
    assert sources["storefront"]["available"] is False
    assert _json(["metadata"], FIXTURES / "full")["sourcePipelines"] is None


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_list_json_matches_schema_and_the_query_model(name: str) -> None:
    cwd = PIPELINES[name]
    data = _json(["list"], cwd)
    jsonschema.validate(data, _schema("task-list.schema.json"))
    assert data == _dump(query.list_tasks(load_pipeline(cwd=cwd)))


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_graph_json_matches_schema_and_the_query_model(name: str) -> None:
    cwd = PIPELINES[name]
    data = _json(["graph"], cwd)
    jsonschema.validate(data, _schema("graph.schema.json"))
    assert data == _dump(query.graph(load_pipeline(cwd=cwd)))


@pytest.mark.parametrize(
    ("name", "task"), [("full", "test"), ("full", "claims"), ("quickstart", "dist.check")]
)
def test_explain_json_matches_schema_and_the_query_model(name: str, task: str) -> None:
    cwd = PIPELINES[name]
    data = _json(["explain", task], cwd)
    jsonschema.validate(data, _schema("explanation.schema.json"))
    assert data == _dump(query.explain_task(load_pipeline(cwd=cwd), task))


def test_explain_resolves_dependencies_dependents_named_inputs_and_jobs() -> None:
    data = _json(["explain", "build"], FIXTURES / "full")
    assert data["dependencies"] == {"direct": ["lint"], "transitive": ["lint"]}
    assert data["dependents"]["direct"] == ["test"]
    assert data["jobs"] == ["verify", "publish"]
    assert data["task"]["inputs"] == ["all"]
    assert data["task"]["resolvedInputs"] == ["src/**/*.py", "pyproject.toml", "docs/**"]
    assert set(data["namedInputs"]) == {"all", "py"}
    assert data["task"]["steps"][0] == {
        "kind": "shell",
        "command": "python -m build --outdir 'dist dir'",
    }


def test_explain_describes_deferred_and_function_steps_without_calling_them() -> None:
    test = _json(["explain", "test"], FIXTURES / "full")["task"]
    assert test["steps"][1]["kind"] == "deferredShell"
    assert test["steps"][1]["location"].startswith("pipeline.py:")
    claims = _json(["explain", "claims"], FIXTURES / "full")["task"]
    assert claims["steps"] == [
        {
            "kind": "function",
            "callable": "check_report",
            "location": claims["steps"][0]["location"],
            "async": True,
        }
    ]


def test_list_filters_by_prefix_and_by_job() -> None:
    cwd = FIXTURES / "full"
    by_prefix = _json(["list", "--prefix", "claims"], cwd)
    assert [t["id"] for t in by_prefix["tasks"]] == [
        "claims",
        "claims.report",
        "claims.index-check",
    ]
    by_job = _json(["list", "--job", "publish"], cwd)
    assert [t["id"] for t in by_job["tasks"]] == ["lint", "build"]
    assert by_job["total"] == 2
    assert by_job["filter"] == {"prefix": None, "job": "publish"}


def test_graph_for_a_job_is_its_subgraph_and_keeps_source_refs() -> None:
    data = _json(["graph", "--job", "verify"], FIXTURES / "full")
    ids = {n["id"]: n["kind"] for n in data["nodes"]}
    assert ids["admin:test-design-system"] == "source"
    assert "claims.index-check" not in ids
    assert {"from": "build", "to": "test"} in data["edges"]
    assert {"from": "admin:test-design-system", "to": "test"} in data["edges"]


def test_graph_renders_dot_and_mermaid_with_every_edge() -> None:
    cwd = EXAMPLES / "quickstart"
    dot = run_cli(["graph", "--format", "dot"], cwd)
    assert dot.code == 0
    assert dot.stdout.startswith('digraph "quickstart" {')
    assert '"build" -> "dist.check";' in dot.stdout
    mermaid = run_cli(["graph", "--format", "mermaid"], cwd)
    assert mermaid.stdout.splitlines()[0] == "flowchart LR"
    assert mermaid.stdout.count("-->") == 3
    text = run_cli(["graph"], cwd)
    assert "lint -> test" in text.stdout.splitlines()


@pytest.mark.parametrize(
    "args",
    [["metadata"], ["list"], ["explain", "build"], ["graph"], ["metadata", "--include-sources"]],
)
def test_text_output_is_readable_and_never_shows_secret_names_as_values(args: list[str]) -> None:
    result = run_cli(args, FIXTURES / "full")
    assert result.code == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr == ""


def test_config_flag_works_before_or_after_the_command(tmp_path: Path) -> None:
    config = str(FIXTURES / "minimal" / "pipeline.py")
    before = run_cli(["--config", config, "list", "--format", "json"], tmp_path)
    after = run_cli(["list", "--config", config, "--format", "json"], tmp_path)
    assert before.code == after.code == 0
    assert json.loads(before.stdout) == json.loads(after.stdout)
    directory = run_cli(["list", "--config", str(FIXTURES / "minimal")], tmp_path)
    assert directory.code == 0


def test_large_answers_come_a_page_at_a_time_and_say_how_to_get_more(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    try:
        from synthetic import write_pipeline
    finally:
        sys.path.pop(0)
    write_pipeline(tmp_path, tasks=450)
    first = _json(["list"], tmp_path)
    jsonschema.validate(first, _schema("task-list.schema.json"))
    assert (len(first["tasks"]), first["total"], first["truncated"]) == (200, 450, True)
    assert first["nextOffset"] == 200 and "offset 200" in first["hint"]
    last = _json(["list", "--offset", "400"], tmp_path)
    assert (len(last["tasks"]), last["truncated"], last["nextOffset"], last["hint"]) == (
        50,
        False,
        None,
        None,
    )
    assert len(_json(["list", "--limit", "0"], tmp_path)["tasks"]) == 450
    graph = _json(["graph", "--limit", "10"], tmp_path)
    jsonschema.validate(graph, _schema("graph.schema.json"))
    ids = {n["id"] for n in graph["nodes"]}
    assert len(ids) == 10 and graph["truncated"] is True
    assert all(e["from"] in ids and e["to"] in ids for e in graph["edges"])
    assert "truncated" in run_cli(["graph", "--limit", "10", "--format", "dot"], tmp_path).stdout
    assert "offset 200" in run_cli(["list"], tmp_path).stdout


@pytest.mark.parametrize("args", [["graph", "--format", "dot"], ["list"], ["graph"]])
def test_a_human_format_that_shows_one_page_says_so_on_stderr(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "pipeline.py").write_text(
        "from async_pipeline import define_pipeline, sh, task\n"
        "pipeline = define_pipeline(name='p', tasks={f't{i:03}': task(sh('true'))"
        " for i in range(250)})\n"
    )
    paged = run_cli(args, tmp_path)
    assert paged.code == 0
    assert "showing" in paged.stderr and "1-200 of 250" in paged.stderr
    assert "--limit 0" in paged.stderr
    whole = run_cli([*args, "--limit", "0"], tmp_path)
    assert whole.code == 0 and whole.stderr == ""
    assert "t249" in whole.stdout
