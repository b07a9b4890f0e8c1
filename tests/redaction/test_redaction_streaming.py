"""Chunk-boundary safety: a stream masks exactly what a whole-buffer redaction masks."""

from __future__ import annotations

import base64
import itertools
import json
import shlex
from collections.abc import Iterable
from urllib.parse import quote, quote_from_bytes

from hypothesis import given, settings
from hypothesis import strategies as st

from async_pipeline.redaction import MASK, Redactor

SECRET = "tok-4f9a2c81d7e3b605"
AWKWARD = "p@ss w/rd+'\"$é-7731"


def redact_in_chunks(redactor: Redactor, chunks: Iterable[bytes]) -> bytes:
    stream = redactor.stream()
    out = b"".join(stream.feed(chunk) for chunk in chunks)
    return out + stream.flush()


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


def test_secret_split_across_two_chunks_at_every_offset_is_masked() -> None:
    redactor = Redactor([SECRET])
    data = f"before {SECRET} after".encode()
    for cut in range(len(data) + 1):
        assert redact_in_chunks(redactor, split_at(data, [cut])) == b"before *** after"


def test_secret_split_across_three_chunks_at_every_offset_is_masked() -> None:
    redactor = Redactor([SECRET])
    data = f"<{SECRET}>".encode()
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            chunks = split_at(data, [first, second])
            assert redact_in_chunks(redactor, chunks) == b"<***>", (first, second)


def test_every_encoded_form_split_at_every_offset_equals_whole_buffer_redaction() -> None:
    redactor = Redactor([AWKWARD])
    raw = AWKWARD.encode()
    data = b" | ".join(
        [
            raw,
            base64.b64encode(b"u:" + raw),
            quote(AWKWARD, safe="").encode(),
            json.dumps(AWKWARD).encode(),
            shlex.quote(AWKWARD).encode(),
            raw.hex().encode(),
        ]
    )
    whole = redactor.redact(data)
    assert whole.count(MASK) == 6
    for cut in range(len(data) + 1):
        assert redact_in_chunks(redactor, split_at(data, [cut])) == whole, cut


def test_run_of_adjacent_secrets_split_between_them_gets_a_single_mask() -> None:
    redactor = Redactor([SECRET])
    data = f"[{SECRET}{SECRET}]".encode()
    for cut in range(len(data) + 1):
        assert redact_in_chunks(redactor, split_at(data, [cut])) == b"[***]"


def test_one_byte_chunks_mask_like_the_whole_buffer() -> None:
    redactor = Redactor([SECRET, AWKWARD])
    data = f"a {SECRET} b {json.dumps(AWKWARD)} c".encode()
    assert redact_in_chunks(redactor, [bytes([byte]) for byte in data]) == redactor.redact(data)


def test_stream_holds_back_only_the_longest_pattern_length_minus_one() -> None:
    redactor = Redactor([SECRET])
    stream = redactor.stream()
    data = bytes(range(32, 127)) * 20
    written = b""
    for chunk in split_at(data, range(7, len(data), 13)):
        written += stream.feed(chunk)
        fed = len(written) + stream.pending
        assert stream.pending == min(fed, redactor.holdback)
        assert written == data[: fed - stream.pending]
    assert written + stream.flush() == data
    assert stream.pending == 0


def test_empty_redactor_stream_passes_every_chunk_straight_through() -> None:
    stream = Redactor().stream()
    assert stream.feed(b"abc") == b"abc"
    assert stream.pending == 0
    assert stream.flush() == b""


def test_stream_is_reusable_after_flush() -> None:
    redactor = Redactor([SECRET])
    stream = redactor.stream()
    data = f"x{SECRET}".encode()
    first = stream.feed(data[:5]) + stream.feed(data[5:]) + stream.flush()
    second = stream.feed(data) + stream.flush()
    assert first == second == b"x***"


def test_invalid_utf8_and_binary_stream_through_with_only_secrets_masked() -> None:
    redactor = Redactor([SECRET])
    junk = b"\xff\xfe\x00\xc3(\xa0\xa1\xe2\x28\xa1\x80"
    data = junk + SECRET.encode() + junk
    for cut in range(len(data) + 1):
        assert redact_in_chunks(redactor, split_at(data, [cut])) == junk + MASK + junk


# Secrets never contain "*", so no mask can combine with its neighbours into a new occurrence.
_SECRET_BYTES = st.binary(min_size=4, max_size=24).filter(lambda value: b"*" not in value)
_ENCODERS = (
    lambda value: value,
    lambda value: base64.b64encode(value),
    lambda value: value.hex().encode(),
    lambda value: quote_from_bytes(value, safe="").encode(),
)


@st.composite
def _stream_case(draw: st.DrawFn) -> tuple[list[bytes], bytes, list[int]]:
    secrets = draw(st.lists(_SECRET_BYTES, min_size=1, max_size=4))
    pieces = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=40),
                st.tuples(st.sampled_from(secrets), st.sampled_from(_ENCODERS)).map(
                    lambda pair: pair[1](pair[0])
                ),
                st.sampled_from(secrets).map(lambda secret: b"x" * 3 + secret + secret[:5]),
            ),
            max_size=12,
        )
    )
    data = b"".join(pieces)
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=6))
    return secrets, data, cuts


@settings(max_examples=1000, deadline=None)
@given(_stream_case())
def test_streaming_equals_whole_buffer_redaction_for_any_chunking(
    case: tuple[list[bytes], bytes, list[int]],
) -> None:
    secrets, data, cuts = case
    redactor = Redactor(secrets)
    whole = redactor.redact(data)
    assert redact_in_chunks(redactor, split_at(data, cuts)) == whole
    for secret in secrets:
        if len(secret.strip()) >= 4:
            assert secret not in whole


@settings(max_examples=150, deadline=None)
@given(
    secret=st.text(min_size=4, max_size=30).filter(lambda text: len(text.strip()) >= 4),
    before=st.binary(max_size=30),
    after=st.binary(max_size=30),
    first=st.integers(0, 100),
    second=st.integers(0, 100),
)
def test_text_secret_between_random_bytes_is_masked_for_any_two_cuts(
    secret: str, before: bytes, after: bytes, first: int, second: int
) -> None:
    redactor = Redactor([secret])
    raw = secret.encode("utf-8", "surrogatepass")
    data = before + raw + after
    cuts = [min(first, len(data)), min(second, len(data))]
    streamed = redact_in_chunks(redactor, split_at(data, cuts))
    assert streamed == redactor.redact(data)
    if b"***" not in raw:
        assert raw not in streamed
