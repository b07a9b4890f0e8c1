"""The public authoring API is deliberate: adding or removing a name is a decision."""

from __future__ import annotations

import async_pipeline

EXPECTED = [
    "CliResult",
    "Pipeline",
    "PipelineError",
    "__version__",
    "agent",
    "cache",
    "command",
    "define_cache",
    "define_pipeline",
    "depends_on",
    "env",
    "execution",
    "file_cache",
    "job",
    "memory_cache",
    "redis_cache",
    "run_pipeline_cli",
    "sandbox",
    "sh",
    "source",
    "task",
    "trigger",
]


def test_public_names_are_pinned() -> None:
    assert sorted(async_pipeline.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(async_pipeline, name)


def test_helper_namespaces_offer_the_documented_helpers() -> None:
    expected = {
        "env": {"secret", "var"},
        "cache": {"use"},
        "trigger": {"manual", "github", "cron", "schedule"},
        "source": {"path", "git"},
        "sandbox": {"lima", "docker", "container"},
        "execution": {"local", "github"},
        "command": {"policy", "rule", "deny", "mock", "allow", "require_environment"},
    }
    for namespace, helpers in expected.items():
        public = {n for n in dir(getattr(async_pipeline, namespace)) if not n.startswith("_")}
        assert public == helpers, namespace


def test_the_query_layer_exports_its_questions() -> None:
    from async_pipeline import query

    assert sorted(query.__all__) == [
        "diff_inputs",
        "explain_task",
        "graph",
        "list_runs",
        "list_tasks",
        "metadata",
        "read_run",
    ]
