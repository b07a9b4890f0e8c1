"""explain_task keeps an agent's long prompt out of a client's context: its start, its length,
and where the whole text is."""

from __future__ import annotations

from async_pipeline import agent, define_pipeline, query, task
from async_pipeline.query._data import MAX_EXPLAINED_PROMPT


def _explained_prompt(prompt: str) -> str:
    pipeline = define_pipeline(
        name="p",
        agents={"a": {"command": ["agent"], "model": "m"}},
        tasks={"propose": task(agent(use="a", prompt=prompt, stdout_to="o.txt"))},
    )
    step = query.explain_task(pipeline, "propose").task.steps[0]
    prompt_shown = getattr(step, "prompt", None)
    assert isinstance(prompt_shown, str)
    return prompt_shown


def test_a_long_prompt_is_cut_saying_how_long_it_was_and_where_it_is() -> None:
    prompt = "start " + "x" * 2_000_000
    shown = _explained_prompt(prompt)
    assert len(shown) < MAX_EXPLAINED_PROMPT + 500
    assert shown.startswith("start x")
    assert str(len(prompt)) in shown
    assert "pipeline.py" in shown and "agents/propose.prompt.txt" in shown


def test_a_short_prompt_is_shown_whole() -> None:
    prompt = "Summarize notes.txt\n" * 10
    assert _explained_prompt(prompt) == prompt


def test_explaining_leaves_the_declared_prompt_whole() -> None:
    prompt = "y" * (MAX_EXPLAINED_PROMPT + 1)
    pipeline = define_pipeline(
        name="p",
        agents={"a": {"command": ["agent"], "model": "m"}},
        tasks={"propose": task(agent(use="a", prompt=prompt))},
    )
    query.explain_task(pipeline, "propose")
    assert pipeline.tasks["propose"].steps[0].prompt == prompt  # type: ignore[union-attr]
