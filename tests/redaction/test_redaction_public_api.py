"""The public names of the redaction package and its test helpers are a decision, not a drift."""

from __future__ import annotations

import async_pipeline.redaction as redaction
import async_pipeline.testing as testing


def test_redaction_public_names_are_pinned() -> None:
    assert sorted(redaction.__all__) == [
        "JSONValue",
        "MASK",
        "MIN_SECRET_LENGTH",
        "Processor",
        "RedactionStream",
        "Redactor",
        "SkippedSecret",
        "TRUNCATION_MARKER",
        "capped_tail",
        "chain",
        "truncate_tail",
    ]
    assert all(hasattr(redaction, name) for name in redaction.__all__)


def test_canary_helpers_are_exported_from_the_testing_package() -> None:
    assert {"CanaryHit", "canary_forms", "canary_samples", "new_canary", "scan_for_canary"} <= set(
        testing.__all__
    )
    assert all(hasattr(testing, name) for name in testing.__all__)


def test_minimum_secret_length_is_four() -> None:
    assert redaction.MIN_SECRET_LENGTH == 4
    assert redaction.MASK == b"***"
