"""The YAML emitter writes text that a real YAML parser reads back as the same data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from async_pipeline.github._yaml import Commented, dump, plain
from tests.github.conftest import parse_yaml

MISREADABLE = [
    "yes", "No", "ON", "off", "true", "False", "null", "~", "", " ", "3.10", "1e3", "0o17",
    "0x1F", "-1", ".inf", "2026-11-29", "a: b", "a #b", "#x", "*alias", "&anchor", "!tag",
    "@at", "`tick", "${{ secrets.X }}", "{a}", "[a]", "- item", "? key", "line\nline", "word\n",
    "tab\there", "quote\"s", "back\\slash", "'single'", "%percent", "|", ">", "trailing ",
]  # fmt: skip


def test_strings_yaml_could_misread_round_trip_as_the_same_strings() -> None:
    document = {"values": MISREADABLE, "keys": {text: text for text in MISREADABLE if text}}
    assert parse_yaml(dump(document)) == document


def test_plain_words_are_written_without_quotes_and_reserved_words_with_them() -> None:
    text = dump({"runs-on": "ubuntu-latest", "on": {"push": {}}, "YES": "yes", "v": "3.11"})
    assert text.splitlines() == [
        "runs-on: ubuntu-latest",
        "on:",
        "  push: {}",
        '"YES": "yes"',
        'v: "3.11"',
    ]


def test_comments_follow_their_value_and_vanish_from_the_json_twin() -> None:
    document = {"uses": Commented("actions/checkout@abc", "v1.0.0")}
    assert dump(document) == "uses: actions/checkout@abc # v1.0.0\n"
    assert parse_yaml(dump(document)) == plain(document) == {"uses": "actions/checkout@abc"}


def test_nested_lists_of_mappings_and_empty_containers_round_trip() -> None:
    document = {
        "steps": [{"name": "a", "with": {"x": 1, "y": True}}, {"run": "b"}, [], {}, ["c"]],
        "empty": {},
        "none": None,
    }
    assert parse_yaml(dump(document, header=["generated", ""])) == document


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1), st.text() | st.booleans() | st.integers()))
def test_any_mapping_of_scalars_round_trips(document: dict[str, object]) -> None:
    assert parse_yaml(dump(document)) == document
