"""What gets masked: longest match, every byte of every occurrence, short values, identity."""

from __future__ import annotations

import secrets as random_tokens

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from async_pipeline.redaction import MASK, MIN_SECRET_LENGTH, Redactor, SkippedSecret


def test_secret_that_is_a_prefix_of_another_does_not_leave_the_longer_ones_tail() -> None:
    redactor = Redactor(["abcd1234", "abcd12345678"])
    assert redactor.redact(b"<abcd12345678> <abcd1234>") == b"<***> <***>"


def test_overlapping_secrets_are_masked_as_one_run() -> None:
    redactor = Redactor(["abcdef12", "ef123456"])
    assert redactor.redact(b"[abcdef123456]") == b"[***]"


def test_adjacent_occurrences_become_a_single_mask() -> None:
    redactor = Redactor(["s3cr3t-value"])
    assert redactor.redact(b"(s3cr3t-values3cr3t-value)") == b"(***)"


def test_self_overlapping_secret_masks_every_byte_of_a_repetition() -> None:
    redactor = Redactor(["abab"])
    assert redactor.redact(b"xabababax") == b"x***ax"
    assert redactor.redact(b"aaaaaaa") == b"aaaaaaa"
    assert Redactor(["aaaa"]).redact(b"baaaaaaab") == b"b***b"


def test_secret_of_the_minimum_length_is_masked() -> None:
    value = "x" * MIN_SECRET_LENGTH
    assert Redactor([value]).redact(f"<{value}>".encode()) == b"<***>"


def test_short_secret_is_skipped_and_reported_by_name_and_length_only() -> None:
    redactor = Redactor({"PIN": "127", "TOKEN": "long-enough-token"})
    assert redactor.skipped == (SkippedSecret(name="PIN", length=3),)
    assert redactor.redact(b"127 long-enough-token") == b"127 ***"
    assert "127" not in repr(redactor.skipped[0]).replace("length=3", "")


def test_secret_that_is_short_once_whitespace_is_stripped_is_skipped() -> None:
    redactor = Redactor({"PADDED": "  ab \n"})
    assert [skipped.name for skipped in redactor.skipped] == ["PADDED"]
    assert redactor.is_identity


def test_skipped_values_from_a_plain_list_are_named_by_position() -> None:
    redactor = Redactor(["long-enough-token", "", "no"])
    assert [skipped.name for skipped in redactor.skipped] == ["#1", "#2"]


def test_repr_shows_counts_but_never_a_secret_value() -> None:
    value = "hunter2-" + random_tokens.token_hex(8)
    text = repr(Redactor({"API_KEY": value, "PIN": "12"}))
    assert value not in text
    assert "12" not in text
    assert text.startswith("Redactor(secrets=1, ")


def test_empty_redactor_is_an_identity_returning_its_inputs() -> None:
    redactor = Redactor()
    data, text, record = b"anything", "anything", {"k": ["v"]}
    assert redactor.is_identity
    assert redactor.holdback == 0
    assert redactor.redact(data) is data
    assert redactor.redact_text(text) is text
    assert redactor.redact_json(record) is record


def test_clean_input_is_returned_as_the_same_object() -> None:
    redactor = Redactor(["some-secret-value"])
    data, text = b"nothing to see", "nothing to see either"
    assert redactor.redact(data) is data
    assert redactor.redact_text(text) is text


def test_redact_text_masks_and_keeps_the_rest_of_the_text() -> None:
    redactor = Redactor({"PASSWORD": "mot-de-passe-été"})
    assert redactor.redact_text("héllo mot-de-passe-été ✓") == "héllo *** ✓"


def test_redact_text_with_lone_surrogates_does_not_crash() -> None:
    redactor = Redactor(["secret-value"])
    assert redactor.redact_text("\udcff secret-value \ud800") == "\udcff *** \ud800"


def test_redact_text_still_returns_valid_text_when_a_bytes_secret_splits_a_character() -> None:
    # "\xa9" is the second byte of "é": masking it orphans the first byte.
    redactor = Redactor({"BLOB": b"\xa9secret-x"})
    assert redactor.redact_text("café" + "secret-x!") == "caf\ufffd***!"


def test_bytes_secret_that_is_not_utf8_is_masked_in_binary_data() -> None:
    secret = b"\xff\xfe\x00\x80key"
    redactor = Redactor({"BLOB": secret})
    assert redactor.redact(b"\x00\x01" + secret + b"\xc3") == b"\x00\x01***\xc3"


def test_many_secrets_are_each_masked_when_the_word_prefilter_is_in_use() -> None:
    values = [f"tok_{random_tokens.token_hex(10)}" for _ in range(30)]
    redactor = Redactor(values)
    data = b"\n".join(f"line {number}: {value}!".encode() for number, value in enumerate(values))
    redacted = redactor.redact(data)
    assert redacted.count(MASK) == 30
    assert not any(value.encode() in redacted for value in values)


@pytest.mark.parametrize(
    ("count", "length"), [(30, 24), (20, 8)], ids=["8-byte-words", "4-byte-words"]
)
def test_secret_is_found_by_the_word_prefilter_at_every_byte_alignment(
    count: int, length: int
) -> None:
    values = [random_tokens.token_hex(length)[:length] for _ in range(count)]
    redactor = Redactor(values)
    for offset in range(17):
        for value in (values[0], values[-1]):
            data = b"." * offset + value.encode() + b"." * (16 - offset)
            assert redactor.redact(data) == b"." * offset + MASK + b"." * (16 - offset)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.binary(min_size=4, max_size=30), max_size=5))
def test_arbitrary_binary_input_never_crashes(data: bytes, values: list[bytes]) -> None:
    redactor = Redactor(values)
    redacted = redactor.redact(data)
    assert isinstance(redacted, bytes)
    redactor.redact_text(data.decode("utf-8", "surrogateescape"))


# Reference model. Secrets are drawn from "a"/"b" and the data from "a", "b", "\xff", "\n": no
# encoded form of such a secret (base64, hex, ...) can occur in such data, so the raw
# occurrences alone decide what must be masked, and a brute-force scan can compute it.
# Decoys (which cannot occur in such data) put many patterns in the redactor, so that the
# word prefilter is in use: long decoys make it read 8-byte words, short ones 4-byte words.
_DECOYS = {
    "none": [],
    "long": [f"decoy-{number:02d}-{'q' * 12}" for number in range(12)],
    "short": [f"dcy{number:02d}qq" for number in range(12)],
}


def _reference_redaction(data: bytes, values: list[bytes]) -> bytes:
    covered = [False] * len(data)
    for value in values:
        for start in range(len(data) - len(value) + 1):
            if data[start : start + len(value)] == value:
                covered[start : start + len(value)] = [True] * len(value)
    out = bytearray()
    for position, byte in enumerate(data):
        if not covered[position]:
            out.append(byte)
        elif position == 0 or not covered[position - 1]:
            out += MASK
    return bytes(out)


# Any byte maps onto one of "a", "b", "\xff", "\n".
_AB_NOISE = bytes(b"ab\xff\n"[byte % 4] for byte in range(256))
_AB_SECRET = st.text(alphabet="ab", min_size=4, max_size=20).map(str.encode)
_AB_DATA = st.lists(
    st.one_of(st.binary(max_size=8).map(lambda noise: noise.translate(_AB_NOISE)), _AB_SECRET),
    max_size=10,
).map(b"".join)


@pytest.mark.parametrize(
    "decoys", ["none", "long", "short"], ids=["direct-search", "8-byte-words", "4-byte-words"]
)
@settings(max_examples=400, deadline=None)
@given(values=st.lists(_AB_SECRET, min_size=1, max_size=4), data=_AB_DATA)
def test_every_byte_of_every_occurrence_is_masked_as_a_brute_force_scan_would(
    decoys: str, values: list[bytes], data: bytes
) -> None:
    redactor = Redactor([*values, *_DECOYS[decoys]])
    assert redactor.redact(data) == _reference_redaction(data, values)
