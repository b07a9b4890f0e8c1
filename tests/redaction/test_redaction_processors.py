"""Processors at a sink's exit: chain, tail truncation, and the redact-then-truncate order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from async_pipeline.redaction import (
    MASK,
    TRUNCATION_MARKER,
    Redactor,
    capped_tail,
    chain,
    truncate_tail,
)

SECRET = "SECRETVALUEABCDEFGHIJKLMN"


def test_chain_applies_processors_left_to_right() -> None:
    processor = chain(lambda data: data + b"1", lambda data: data + b"2")
    assert processor(b"0") == b"012"


def test_chain_of_no_processors_is_the_identity() -> None:
    data = b"unchanged"
    assert chain()(data) is data


def test_truncate_tail_leaves_data_within_the_cap_unchanged() -> None:
    data = b"x" * 64
    assert truncate_tail(64)(data) is data


def test_truncate_tail_keeps_the_end_behind_a_marker_within_the_cap() -> None:
    data = b"".join(b"line %03d\n" % number for number in range(100))
    truncated = truncate_tail(100)(data)
    assert len(truncated) == 100
    assert truncated.startswith(TRUNCATION_MARKER)
    assert data.endswith(truncated[len(TRUNCATION_MARKER) :])


def test_truncate_tail_never_starts_inside_a_utf8_character() -> None:
    data = "€".encode() * 50
    for cap in range(len(TRUNCATION_MARKER), len(TRUNCATION_MARKER) + 12):
        kept = truncate_tail(cap, marker=TRUNCATION_MARKER)(data)[len(TRUNCATION_MARKER) :]
        assert kept.decode("utf-8") == "€" * (len(kept) // 3)


def test_truncate_tail_uses_a_custom_marker() -> None:
    assert truncate_tail(6, marker=b"..")(b"abcdefgh") == b"..efgh"


def test_truncate_tail_rejects_a_cap_smaller_than_its_marker() -> None:
    with pytest.raises(ValueError, match="marker"):
        truncate_tail(3, marker=b"[cut]")


def _log_with_secret_at(offset: int) -> bytes:
    # Filler has no letter, so any letter left outside the marker is a piece of the secret.
    return b"-" * offset + SECRET.encode() + b"-" * 40 + b"\n"


def _letters_outside_marker(data: bytes) -> bytes:
    body = data.removeprefix(TRUNCATION_MARKER)
    return bytes(byte for byte in body if chr(byte).isalpha())


def test_capped_tail_leaves_no_fragment_of_a_secret_straddling_the_truncation_point() -> None:
    redactor = Redactor([SECRET])
    cap = len(TRUNCATION_MARKER) + 50
    process = capped_tail(redactor, cap)
    for offset in range(120):
        log = _log_with_secret_at(offset)
        capped = process(log)
        assert len(capped) <= cap
        assert _letters_outside_marker(capped) == b"", offset


def test_truncating_before_redacting_would_leave_a_readable_fragment() -> None:
    # Why capped_tail redacts first: cut mid-secret, the remaining piece matches no pattern.
    redactor = Redactor([SECRET])
    cap = len(TRUNCATION_MARKER) + 50
    wrong_order = chain(truncate_tail(cap), redactor.redact)
    log = _log_with_secret_at(20)
    assert _letters_outside_marker(wrong_order(log)) == SECRET[-9:].encode()
    assert _letters_outside_marker(capped_tail(redactor, cap)(log)) == b""


@settings(max_examples=150, deadline=None)
@given(
    before=st.binary(max_size=200),
    after=st.binary(max_size=200),
    cap=st.integers(len(TRUNCATION_MARKER), 300),
)
def test_capped_output_never_contains_the_secret_or_exceeds_the_cap(
    before: bytes, after: bytes, cap: int
) -> None:
    redactor = Redactor([SECRET])
    capped = capped_tail(redactor, cap)(before + SECRET.encode() + after)
    assert len(capped) <= cap
    assert SECRET.encode()[-6:] not in capped or SECRET.encode()[-6:] in after
    assert MASK in capped or len(after) + len(MASK) > cap - len(TRUNCATION_MARKER)
