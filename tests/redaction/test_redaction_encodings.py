"""Every common encoding of a secret is masked, as the real encoders write it."""

from __future__ import annotations

import base64
import json
import random
import re
import shlex
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import orjson
import pytest

from async_pipeline.redaction import MASK, Redactor
from async_pipeline.testing import canary_samples, new_canary, scan_for_canary

# Space, slash, plus, quotes, dollar, backtick, backslash, ampersand, non-ASCII: every encoding
# below rewrites some of these, so a form that was missed cannot hide behind the raw one.
SECRET = "p@ss w/rd+'\"$`\\&é-4c1d"
RAW = SECRET.encode()


def test_raw_secret_is_masked() -> None:
    assert Redactor([SECRET]).redact(b"pw=" + RAW + b";") == b"pw=***;"


def _stable_range(encode: Callable[[bytes, bytes], bytes], before: int, after: int) -> range:
    """Character positions of the encoding that stay the same whatever surrounds the secret.

    Found empirically from the real encoder with random neighbours, independently of how the
    redactor computes them.
    """
    rng = random.Random(before * 10 + after)
    samples = [encode(rng.randbytes(before), rng.randbytes(after)) for _ in range(12)]
    # Padding is the same in every sample too, but says nothing about the secret.
    same = [
        samples[0][i] != ord("=") and all(sample[i] == samples[0][i] for sample in samples)
        for i in range(len(samples[0]))
    ]
    first = same.index(True)
    last = len(same) - 1 - same[::-1].index(True)
    return range(first, last + 1)


@pytest.mark.parametrize("alphabet", ["standard", "urlsafe"])
@pytest.mark.parametrize("after", [0, 1, 2, 5])
@pytest.mark.parametrize("before", [0, 1, 2, 3, 4, 5])
def test_base64_of_secret_at_every_alignment_has_its_whole_stable_part_masked(
    before: int, after: int, alphabet: str
) -> None:
    b64 = base64.b64encode if alphabet == "standard" else base64.urlsafe_b64encode

    def encode(prefix: bytes, suffix: bytes) -> bytes:
        return b64(prefix + RAW + suffix)

    # At the very end of a stream the last character mixes the secret's final bits with zero
    # padding instead of a neighbour; those few bits are not part of the matchable inner run.
    stable = _stable_range(encode, before, max(after, 1))
    encoded = encode(bytes(range(1, before + 1)), bytes(range(7, 7 + after)))
    redacted = Redactor([SECRET]).redact(encoded)

    assert redacted.count(MASK) == 1
    mask_at = redacted.index(MASK)
    resumes_at = len(encoded) - (len(redacted) - mask_at - len(MASK))
    assert mask_at <= stable.start
    assert resumes_at >= stable.stop
    assert redacted == encoded[:mask_at] + MASK + encoded[resumes_at:]


def test_base64_basic_auth_header_with_secret_password_is_masked() -> None:
    redactor = Redactor({"PASSWORD": SECRET})
    for user in ("a", "ab", "abc"):
        header = b"Authorization: Basic " + base64.b64encode(f"{user}:{SECRET}".encode())
        assert b"***" in redactor.redact(header)
        assert scan_for_canary(SECRET, captured=[redactor.redact(header)]) == []


def _lower_hex(encoded: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda match: match.group().lower(), encoded)


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: quote(text, safe=""),
        lambda text: quote(text),
        lambda text: quote(text, safe="!'()*"),
        lambda text: quote_plus(text),
        lambda text: quote_plus(text, safe="/"),
        lambda text: _lower_hex(quote(text, safe="")),
        lambda text: _lower_hex(quote_plus(text)),
    ],
    ids=[
        "no-safe",
        "keep-slash",
        "keep-subdelims",
        "plus",
        "plus-keep-slash",
        "lower",
        "plus-lower",
    ],
)
def test_url_encoded_secret_is_masked(encode: Callable[[str], str]) -> None:
    url = f"https://host/cb?token={encode(SECRET)}&state=1".encode()
    assert Redactor([SECRET]).redact(url) == b"https://host/cb?token=***&state=1"


@pytest.mark.parametrize(
    "dumps",
    [
        lambda value: json.dumps(value),
        lambda value: json.dumps(value, ensure_ascii=False),
        lambda value: orjson.dumps(value).decode(),
        lambda value: json.dumps(value).replace("/", "\\/"),
        lambda value: json.dumps(value, ensure_ascii=False).replace("/", "\\/"),
    ],
    ids=["ascii", "utf8", "compact", "ascii-solidus", "utf8-solidus"],
)
def test_json_escaped_secret_is_masked(dumps: Callable[[object], str]) -> None:
    document = dumps({"password": SECRET}).encode()
    expected = dumps({"password": "***"}).encode()
    assert Redactor([SECRET]).redact(document) == expected


def test_json_escaped_secret_with_control_characters_and_emoji_is_masked() -> None:
    secret = "line1\tline2\x01\U0001f511end"
    redactor = Redactor([secret])
    for ensure_ascii in (True, False):
        document = json.dumps([secret], ensure_ascii=ensure_ascii).encode()
        assert redactor.redact(document) == b'["***"]'


def test_shell_single_quoted_secret_is_masked() -> None:
    command = f"deploy --password {shlex.quote(SECRET)} --region eu".encode()
    assert Redactor([SECRET]).redact(command) == b"deploy --password '***' --region eu"


def test_secret_inside_a_longer_single_quoted_word_is_masked() -> None:
    command = f"sh -c {shlex.quote('login ' + SECRET + ' now')}".encode()
    assert Redactor([SECRET]).redact(command) == b"sh -c 'login *** now'"


def test_shell_double_quoted_secret_with_backslash_escapes_is_masked() -> None:
    escaped = "".join("\\" + char if char in '\\"$`' else char for char in SECRET)
    command = f'export TOKEN="{escaped}"'.encode()
    assert Redactor([SECRET]).redact(command) == b'export TOKEN="***"'


def test_shell_backslash_escaped_secret_is_masked() -> None:
    escaped = re.sub(r"([^\w@%+=:,./-])", r"\\\1", SECRET, flags=re.ASCII)
    assert Redactor([SECRET]).redact(f"run {escaped}\n".encode()) == b"run ***\n"


@pytest.mark.parametrize("encode", [bytes.hex, lambda raw: raw.hex().upper()])
def test_hex_encoded_secret_is_masked(encode: Callable[[bytes], str]) -> None:
    assert Redactor([SECRET]).redact(f"dump {encode(RAW)}.".encode()) == b"dump ***."


_KEY = (
    "-----BEGIN TEST KEY-----\n"
    "MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEAq7BFUpkGp3+Lqmgb\n"
    "Ub5xAzh1nUP4ufHiAE4bUxAh9BAPv1zlC5eVqv0L6f+dd1Zf0oUnLvN3EXnwU3ou\n"
    "}\n"
    "-----END TEST KEY-----\n"
)


def test_multiline_secret_printed_line_by_line_is_masked_on_every_line() -> None:
    redactor = Redactor({"KEY": _KEY})
    log = "".join(f"[step] {line}\n" for line in _KEY.splitlines()).encode()
    redacted = redactor.redact(log)
    assert redacted == b"[step] ***\n" * 3 + b"[step] }\n" + b"[step] ***\n"


def test_multiline_secret_lines_are_masked_in_their_encodings_too() -> None:
    redactor = Redactor({"KEY": _KEY})
    line = _KEY.splitlines()[1]
    data = b"b64=" + base64.b64encode(line.encode()) + b" json=" + json.dumps(_KEY).encode()
    assert re.fullmatch(rb'b64=\*\*\*[A-Za-z0-9+/]?=* json="\*\*\*"', redactor.redact(data))


def test_trivial_lines_of_a_multiline_secret_are_not_masked_alone() -> None:
    redactor = Redactor({"KEY": _KEY})
    assert redactor.redact(b"if x {\n}\n") == b"if x {\n}\n"


def test_secret_stored_with_a_trailing_newline_is_masked_without_it() -> None:
    redactor = Redactor({"TOKEN": "tok-5be1a07c\n"})
    assert redactor.redact(b"token=tok-5be1a07c;") == b"token=***;"


def test_every_canary_encoding_is_masked_so_the_scanner_finds_nothing() -> None:
    canary = new_canary()
    redactor = Redactor([canary])
    planted = {name: b"<<" + sample + b">>" for name, sample in canary_samples(canary).items()}
    assert all(scan_for_canary(canary, captured={name: data}) for name, data in planted.items())
    redacted = {name: redactor.redact(data) for name, data in planted.items()}
    assert scan_for_canary(canary, captured=redacted) == []
