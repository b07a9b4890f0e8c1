"""The redactor of one run: built from its resolved secret values, applied where bytes leave."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from async_pipeline.redaction._forms import encoded_forms, secret_pieces
from async_pipeline.redaction._json import JSONValue, redact_json_value
from async_pipeline.redaction._matcher import Span, SpanFinder

__all__ = ["MASK", "MIN_SECRET_LENGTH", "RedactionStream", "Redactor", "SkippedSecret"]

MASK = b"***"
"""What every masked run of bytes is replaced with, however many secrets it covered."""

MIN_SECRET_LENGTH = 4
"""Values shorter than this (after stripping whitespace) are not masked.

A value of one to three characters ("1", "dev", "yes") occurs by chance all over ordinary output:
masking it would shred logs and records, and every mask would tell a reader where the value stood,
so masking would reveal it rather than hide it. Such a value can be guessed in well under a second
anyway. Four is the shortest length at which masking protects more than it damages; the redactor
reports each skipped value by name so the runner can warn that it is too short to be a secret.
"""


@dataclass(frozen=True)
class SkippedSecret:
    """A secret too short to mask: its name and length only, never its value."""

    name: str
    length: int


class Redactor:
    """Masks the secret values of a run, and their common encodings, in bytes, text and JSON.

    ``secrets`` is either a mapping of name to value or a plain iterable of values (then named
    ``#0``, ``#1``, ... in :attr:`skipped`). Values may be ``str`` (matched as UTF-8) or ``bytes``.
    A redactor without secrets is an identity that costs next to nothing.
    """

    __slots__ = ("_finder", "_secret_count", "skipped")

    def __init__(self, secrets: Mapping[str, str | bytes] | Iterable[str | bytes] = ()) -> None:
        named: Iterable[tuple[str, str | bytes]] = (
            secrets.items()
            if isinstance(secrets, Mapping)
            else ((f"#{number}", value) for number, value in enumerate(secrets))
        )
        patterns: list[bytes] = []
        skipped: list[SkippedSecret] = []
        count = 0
        for name, value in named:
            if len(value.strip()) < MIN_SECRET_LENGTH:
                skipped.append(SkippedSecret(name=name, length=len(value)))
                continue
            count += 1
            for piece in secret_pieces(_to_bytes(value), MIN_SECRET_LENGTH):
                patterns.extend(encoded_forms(piece).values())
        self._secret_count = count
        self._finder = SpanFinder(patterns) if patterns else None
        self.skipped: tuple[SkippedSecret, ...] = tuple(skipped)
        """Secrets left unmasked for being shorter than :data:`MIN_SECRET_LENGTH`."""

    def __repr__(self) -> str:
        # Counts only: a redactor ends up in tracebacks and debug output, its values must not.
        patterns = 0 if self._finder is None else self._finder.pattern_count
        return (
            f"Redactor(secrets={self._secret_count}, patterns={patterns}, "
            f"skipped={len(self.skipped)})"
        )

    @property
    def is_identity(self) -> bool:
        """True when there is nothing to mask, so every method returns its input unchanged."""
        return self._finder is None

    @property
    def holdback(self) -> int:
        """The most bytes a stream keeps back between chunks: the longest pattern length - 1."""
        return 0 if self._finder is None else self._finder.max_length - 1

    def redact(self, data: bytes) -> bytes:
        """Return ``data`` with every occurrence of every secret form replaced by :data:`MASK`.

        Every byte of every occurrence is masked; overlapping or adjacent occurrences become a
        single mask. Arbitrary binary input is fine. Returns ``data`` itself when nothing matched.
        """
        if self._finder is None:
            return data
        data = bytes(data)
        spans = self._finder.spans(data)
        if not spans:
            return data
        rendered, _, _ = _render(data, spans, len(data), run_open=False)
        return rendered

    def redact_text(self, text: str) -> str:
        """Redact a ``str`` (matched through its UTF-8 bytes); returns ``text`` itself if clean."""
        if self._finder is None:
            return text
        data, errors = _encode_text(text)
        redacted = self.redact(data)
        if redacted is data:
            return text
        try:
            return redacted.decode("utf-8", errors)
        except UnicodeDecodeError:
            # Only a bytes-valued secret can cover part of a character; what is left of that
            # character becomes U+FFFD, so the result is still text any serializer accepts.
            return redacted.decode("utf-8", "replace")

    def redact_json(self, value: object) -> JSONValue:
        """Redact JSON-ready data: dict keys, string values, and numbers whose text is a secret.

        Use this for records and MCP responses rather than redacting the serialized document:
        masking values one by one cannot break the document's syntax. A number whose decimal
        text contains a secret becomes the string ``"***"``. Tuples come back as lists.
        """
        if self._finder is None:
            return redact_json_value(value, None)
        return redact_json_value(value, self.redact_text)

    def stream(self) -> RedactionStream:
        """Start redacting a stream of chunks (a subprocess pipe, a log being written)."""
        return RedactionStream(self._finder)


class RedactionStream:
    """Redacts a byte stream chunk by chunk; the output equals :meth:`Redactor.redact` of the whole.

    ``feed`` returns what is already safe to write; ``flush`` returns the rest at end of stream and
    leaves the stream ready for a new one. A secret split across any number of chunks is masked.
    Only the last :attr:`Redactor.holdback` bytes are ever kept back: an occurrence that ends in a
    later chunk must start within them.
    """

    __slots__ = ("_carry", "_finder", "_hold", "_run_open", "_tail")

    def __init__(self, finder: SpanFinder | None) -> None:
        self._finder = finder
        self._hold = 0 if finder is None else finder.max_length - 1
        self._tail = b""
        # Bytes at the start of the tail already covered by an occurrence that began earlier.
        self._carry = 0
        # Whether the last byte written was masked, so a run continuing into the tail gets no
        # second mask.
        self._run_open = False

    @property
    def pending(self) -> int:
        """How many bytes are held back, waiting for the next chunk or :meth:`flush`."""
        return len(self._tail)

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk; return the redacted bytes that no later chunk can affect."""
        if self._finder is None:
            return bytes(chunk)
        buffer = self._tail + chunk if self._tail else bytes(chunk)
        stop = len(buffer) - self._hold
        if stop <= 0:
            self._tail = buffer
            return b""
        return self._emit(self._finder, buffer, stop)

    def flush(self) -> bytes:
        """End the stream: return everything still held back, redacted."""
        if self._finder is None or not self._tail:
            return b""
        out = self._emit(self._finder, self._tail, len(self._tail))
        self._tail, self._carry, self._run_open = b"", 0, False
        return out

    def _emit(self, finder: SpanFinder, buffer: bytes, stop: int) -> bytes:
        spans = finder.spans(buffer, self._carry)
        out, self._carry, self._run_open = _render(buffer, spans, stop, run_open=self._run_open)
        self._tail = buffer[stop:]
        return out


def _render(
    buffer: bytes, spans: list[Span], stop: int, *, run_open: bool
) -> tuple[bytes, int, bool]:
    """Write ``buffer[:stop]`` with each span masked.

    Returns the bytes, how many bytes past ``stop`` the last span still covers, and whether the
    byte just before ``stop`` was masked. Spans starting at or after ``stop`` are left for the
    next buffer, which finds them again.
    """
    if not spans:
        return (buffer if stop == len(buffer) else buffer[:stop]), 0, False
    parts: list[bytes] = []
    written = 0
    for start, end in spans:
        if start >= stop:
            break
        if start > written:
            parts.append(buffer[written:start])
        if start > 0 or not run_open:
            parts.append(MASK)
        written = end
        if end >= stop:
            return b"".join(parts), end - stop, True
    parts.append(buffer[written:stop])
    return b"".join(parts), 0, False


def _to_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else _encode_text(value)[0]


def _encode_text(text: str) -> tuple[bytes, str]:
    """Encode text as UTF-8, returning the error handler that decodes it back unchanged."""
    try:
        return text.encode("utf-8"), "strict"
    except UnicodeEncodeError:
        pass
    try:
        # Undecodable bytes that reached a str through surrogateescape (environment variables,
        # file names) get their original bytes back, which is what a child process prints.
        return text.encode("utf-8", "surrogateescape"), "surrogateescape"
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass"), "surrogatepass"
