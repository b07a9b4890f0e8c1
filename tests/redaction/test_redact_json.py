"""redact_json: records and MCP responses are redacted value by value, keys included."""

from __future__ import annotations

import orjson
import pytest

from async_pipeline.redaction import Redactor

SECRET = "sk-live-7d1f0c9e2b"
REDACTOR = Redactor({"API_KEY": SECRET, "ACCOUNT": "90210555"})


def test_string_values_and_keys_are_masked_at_any_depth() -> None:
    record = {
        "task": "deploy",
        "env": {SECRET: "value", "note": f"used {SECRET} twice: {SECRET}"},
        "steps": [{"argv": ["curl", "-H", f"Authorization: Bearer {SECRET}"]}],
    }
    assert REDACTOR.redact_json(record) == {
        "task": "deploy",
        "env": {"***": "value", "note": "used *** twice: ***"},
        "steps": [{"argv": ["curl", "-H", "Authorization: Bearer ***"]}],
    }


def test_json_escaped_forms_inside_string_values_are_masked() -> None:
    embedded = orjson.dumps({"token": SECRET}).decode()
    assert REDACTOR.redact_json({"stdout": embedded}) == {"stdout": '{"token":"***"}'}


def test_number_whose_digits_are_a_secret_becomes_the_mask_string() -> None:
    assert REDACTOR.redact_json({"account": 90210555, "big": 1902105550}) == {
        "account": "***",
        "big": "***",
    }


def test_booleans_null_and_clean_numbers_are_kept() -> None:
    value = {"ok": True, "missing": None, "count": 3, "ratio": 0.5}
    assert REDACTOR.redact_json(value) == value


def test_tuples_come_back_as_lists() -> None:
    assert REDACTOR.redact_json({"pair": (SECRET, 1)}) == {"pair": ["***", 1]}


def test_keys_masked_to_the_same_text_keep_both_values() -> None:
    redacted = REDACTOR.redact_json({SECRET: 1, "90210555": 2, "***": 3})
    assert redacted == {"***": 1, "*** (2)": 2, "*** (3)": 3}


@pytest.mark.parametrize("value", [b"bytes", {"a", "b"}, object(), {1: "int key"}])
def test_data_that_is_not_json_ready_is_rejected(value: object) -> None:
    with pytest.raises(TypeError, match="redact_json"):
        REDACTOR.redact_json({"field": value})


def test_redacted_data_serializes_and_holds_no_secret() -> None:
    record = {"cmd": f"login --token '{SECRET}'", SECRET: [SECRET, {"deep": SECRET}]}
    serialized = orjson.dumps(REDACTOR.redact_json(record))
    assert SECRET.encode() not in serialized
    assert orjson.loads(serialized)["cmd"] == "login --token '***'"
