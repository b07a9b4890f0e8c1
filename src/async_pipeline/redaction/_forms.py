"""The spellings under which a secret value can leave the process.

A secret rarely leaks verbatim only: a tool base64-encodes a ``user:password`` pair, a URL carries
it percent-encoded, a record stores it JSON-escaped, a log echoes a shell command that quoted it.
Each function here turns one value into the byte patterns the matcher must mask.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from urllib.parse import quote, quote_plus

__all__ = ["base64_inner", "encoded_forms", "secret_pieces"]

_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")

# Percent-encoders disagree on which punctuation they leave alone: nothing, the path separator, or
# the RFC 3986 sub-delimiters that browser-side encoders keep. Each choice is a distinct spelling.
_URL_SAFE_SETS = ("", "/", "!'()*")

_PERCENT_ESCAPE = re.compile(rb"%[0-9A-F]{2}")
_DOUBLE_QUOTE_SPECIALS = re.compile(r'([\\"$`])')
# Characters the shell reads literally without any quoting; every other one gets a backslash.
_SHELL_BARE_SPECIALS = re.compile(r"([^\w@%+=:,./-])", re.ASCII)


def secret_pieces(value: bytes, min_length: int) -> list[bytes]:
    """Return the value plus each non-trivial line of it, stripped of surrounding whitespace.

    A multi-line secret (a key file, a JSON credential) is often printed line by line with a prefix
    per line, so each line must be masked on its own. Stripping also catches a single-line value
    that was stored with a trailing newline but is printed without it.
    """
    pieces = [value]
    for line in value.splitlines():
        stripped = line.strip()
        if len(stripped) >= min_length and stripped not in pieces:
            pieces.append(stripped)
    return pieces


def encoded_forms(value: bytes) -> dict[str, bytes]:
    """Map an encoding name to the bytes that spell ``value`` in that encoding.

    Forms that need text (URL, JSON, shell) are produced only when the value is valid UTF-8.
    Several names may map to equal bytes (a plain alphanumeric token is its own URL form); the
    matcher deduplicates.
    """
    forms: dict[str, bytes] = {"raw": value}
    forms.update(_base64_forms(value))
    forms["hex"] = value.hex().encode("ascii")
    forms["hex-upper"] = value.hex().upper().encode("ascii")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return forms
    forms.update(_url_forms(text))
    forms.update(_json_forms(text))
    forms.update(_shell_forms(text))
    return forms


def base64_inner(value: bytes, offset: int) -> bytes:
    """Return the part of a base64 stream that ``value`` alone determines.

    Base64 turns every 3 bytes into 4 characters of 6 bits each. When the value sits at byte
    ``offset`` (mod 3) of a larger encoded stream, the characters at its edges mix its bits with
    the neighbours' bits and change with them; only characters whose 6 bits all come from the value
    are the same whatever surrounds it, so those are what can be matched.
    """
    encoded = base64.b64encode(bytes(offset) + value)
    first = -(-8 * offset // 6)
    stop = 8 * (offset + len(value)) // 6
    return encoded[first:stop]


def _base64_forms(value: bytes) -> dict[str, bytes]:
    forms: dict[str, bytes] = {}
    for offset in range(3):
        inner = base64_inner(value, offset)
        forms[f"base64-offset{offset}"] = inner
        forms[f"base64url-offset{offset}"] = inner.translate(_TO_URLSAFE)
    return forms


def _url_forms(text: str) -> dict[str, bytes]:
    forms: dict[str, bytes] = {}
    for number, safe in enumerate(_URL_SAFE_SETS):
        for style, encoder in (("url", quote), ("url-plus", quote_plus)):
            encoded = encoder(text, safe=safe).encode("ascii")
            forms[f"{style}-safe{number}"] = encoded
            forms[f"{style}-safe{number}-lower"] = _PERCENT_ESCAPE.sub(
                lambda match: match.group().lower(), encoded
            )
    return forms


def _json_forms(text: str) -> dict[str, bytes]:
    forms: dict[str, bytes] = {}
    for style, ensure_ascii in (("json-ascii", True), ("json-utf8", False)):
        # The quotes around a JSON string belong to the document, not to the secret.
        escaped = json.dumps(text, ensure_ascii=ensure_ascii)[1:-1]
        forms[style] = escaped.encode("utf-8")
        # Some writers also escape the solidus; both spellings are valid JSON.
        forms[f"{style}-solidus"] = escaped.replace("/", "\\/").encode("utf-8")
    return forms


def _shell_forms(text: str) -> dict[str, bytes]:
    # Only the inside of the quotes is stable: a command line often quotes a longer word that
    # merely contains the secret.
    single_quoted = shlex.quote(text)
    if single_quoted.startswith("'") and single_quoted.endswith("'"):
        single_quoted = single_quoted[1:-1]
    return {
        "shell-single-quoted": single_quoted.encode("utf-8"),
        "shell-double-quoted": _DOUBLE_QUOTE_SPECIALS.sub(r"\\\1", text).encode("utf-8"),
        "shell-backslashed": _SHELL_BARE_SPECIALS.sub(r"\\\1", text).encode("utf-8"),
    }
