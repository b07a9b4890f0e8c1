"""Canary secrets for leak tests: plant one, run the system, prove it never came out.

A test creates a canary with :func:`new_canary`, passes it in as a secret, exercises a sink (a run
writing ``.async/``, an MCP tool call, CLI output), then asserts::

    assert scan_for_canary(canary, trees=[root / ".async"], captured=responses) == []

The scanner looks for the canary in every encoding a leak is likely to take. Its encodings are
derived here on purpose independently of the redactor's own, so a mistake in one is caught by
the other rather than repeated.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

__all__ = ["CanaryHit", "canary_forms", "canary_samples", "new_canary", "scan_for_canary"]

# Characters that every encoding spells differently (space, slash, plus, quotes, dollar, backtick,
# backslash, ampersand, non-ASCII): with them in the canary, each encoding is a distinct pattern.
_AWKWARD_SUFFIX = "p@ss w/rd+'\"$`\\&é"


@dataclass(frozen=True, order=True)
class CanaryHit:
    """One place a canary was found: a file path (or captured data's label) and the encoding."""

    location: str
    encoding: str


def new_canary(label: str = "canary", *, awkward: bool = True) -> str:
    """Return a fresh, unique canary value.

    With ``awkward`` (the default) it ends in characters that URL, JSON and shell encodings all
    rewrite, so a leak in any of those encodings is told apart from a raw leak. Without it the
    value is a plain token, safe to put unquoted on a command line.
    """
    token = f"{label}-{secrets.token_hex(12)}"
    return f"{token}-{_AWKWARD_SUFFIX}" if awkward else token


def canary_forms(canary: str | bytes) -> dict[str, bytes]:
    """Map encoding name to the bytes that betray ``canary`` in that encoding.

    Base64 forms are the encoded groups lying wholly inside the canary, for each of the three
    byte alignments it can have in a larger stream, in the standard and URL-safe alphabets. A form
    equal to an earlier one (a plain token is its own URL form) is left out, so each leak is
    reported once, under the simplest name.
    """
    raw = canary.encode("utf-8") if isinstance(canary, str) else canary
    forms: dict[str, bytes] = {
        "raw": raw,
        "hex": raw.hex().encode(),
        "hex-upper": raw.hex().upper().encode(),
    }
    for alignment in range(3):
        # From the second 4-character group on, every group encodes bytes 3 and later, past any
        # alignment prefix; without the last group (maybe partial, padded) only groups made
        # entirely of canary bytes remain. Narrower than the exact stable run, on purpose.
        encoded = base64.b64encode(bytes(alignment) + raw)[4:-4]
        forms[f"base64-align{alignment}"] = encoded
        forms[f"base64url-align{alignment}"] = encoded.replace(b"+", b"-").replace(b"/", b"_")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _distinct(forms)
    percent = quote(text, safe="")
    plus = quote_plus(text, safe="")
    forms |= {
        "url": percent.encode(),
        "url-lower": _lower_percent(percent).encode(),
        "url-keep-slash": quote(text).encode(),
        "url-plus": plus.encode(),
        "url-plus-lower": _lower_percent(plus).encode(),
        "json-ascii": json.dumps(text)[1:-1].encode(),
        "json-utf8": json.dumps(text, ensure_ascii=False)[1:-1].encode(),
        "shell-single-quoted": shlex.quote(text).strip("'").encode(),
        "shell-double-quoted": _double_quote_inner(text).encode(),
    }
    return _distinct(forms)


def _distinct(forms: dict[str, bytes]) -> dict[str, bytes]:
    seen: set[bytes] = set()
    distinct: dict[str, bytes] = {}
    for name, form in forms.items():
        if form and form not in seen:
            seen.add(form)
            distinct[name] = form
    return distinct


def canary_samples(canary: str | bytes) -> dict[str, bytes]:
    """Map encoding name to the canary as that encoder writes it, ready to plant in a test.

    The names are those of :func:`canary_forms`, and each sample contains its form. Base64
    samples put neighbour bytes around the canary so it sits at the named alignment.
    """
    raw = canary.encode("utf-8") if isinstance(canary, str) else canary
    samples: dict[str, bytes] = {
        "raw": raw,
        "hex": raw.hex().encode(),
        "hex-upper": raw.hex().upper().encode(),
    }
    for alignment in range(3):
        framed = b"Z" * alignment + raw + b"!?"
        samples[f"base64-align{alignment}"] = base64.b64encode(framed)
        samples[f"base64url-align{alignment}"] = base64.urlsafe_b64encode(framed)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return samples
    percent = quote(text, safe="")
    plus = quote_plus(text, safe="")
    samples |= {
        "url": percent.encode(),
        "url-lower": _lower_percent(percent).encode(),
        "url-keep-slash": quote(text).encode(),
        "url-plus": plus.encode(),
        "url-plus-lower": _lower_percent(plus).encode(),
        "json-ascii": json.dumps(text).encode(),
        "json-utf8": json.dumps(text, ensure_ascii=False).encode(),
        "shell-single-quoted": shlex.quote(text).encode(),
        "shell-double-quoted": f'"{_double_quote_inner(text)}"'.encode(),
    }
    return samples


def scan_for_canary(
    canary: str | bytes,
    *,
    trees: Iterable[str | os.PathLike[str]] = (),
    captured: Mapping[str, bytes | str] | Iterable[bytes | str] = (),
) -> list[CanaryHit]:
    """Return every hit of ``canary``, in any encoding, sorted; an empty list means no leak.

    ``trees`` are directories (scanned recursively, every file read as bytes, symlinked folders
    not followed) or single files. ``captured`` is data held in memory (MCP responses, CLI
    output): a mapping of label to data, or an iterable labelled ``captured[0]``, ``captured[1]``...
    """
    forms = canary_forms(canary)
    hits: set[CanaryHit] = set()
    for tree in trees:
        for path in _files_under(Path(tree)):
            hits.update(_hits_in(path.read_bytes(), str(path), forms))
    labelled: Iterable[tuple[str, bytes | str]] = (
        captured.items()
        if isinstance(captured, Mapping)
        else ((f"captured[{number}]", data) for number, data in enumerate(captured))
    )
    for label, data in labelled:
        as_bytes = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        hits.update(_hits_in(as_bytes, label, forms))
    return sorted(hits)


def _files_under(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found: list[Path] = []
    for folder, _, names in os.walk(root):
        found.extend(Path(folder, name) for name in names if Path(folder, name).is_file())
    return found


def _hits_in(data: bytes, location: str, forms: Mapping[str, bytes]) -> list[CanaryHit]:
    return [CanaryHit(location, name) for name, form in forms.items() if form in data]


def _lower_percent(encoded: str) -> str:
    parts = encoded.split("%")
    return parts[0] + "".join("%" + part[:2].lower() + part[2:] for part in parts[1:])


def _double_quote_inner(text: str) -> str:
    return "".join("\\" + char if char in '\\"$`' else char for char in text)
