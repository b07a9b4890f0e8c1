"""Small output processors, composed once at a sink's exit point.

A processor takes the bytes about to leave the process and returns the bytes to write instead.
Sinks build their pipeline once (``chain(redactor.redact, truncate_tail(...))``) and apply it to
everything they emit, so no caller has to remember to redact.

Order matters: redact first, truncate second. Truncating first can cut a secret in two, leaving a
fragment that no longer matches any pattern but is still readable; :func:`capped_tail` composes
the two in the safe order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from async_pipeline.redaction._redactor import Redactor

__all__ = ["TRUNCATION_MARKER", "Processor", "capped_tail", "chain", "truncate_tail"]

Processor: TypeAlias = Callable[[bytes], bytes]
"""A step applied to outgoing bytes: redaction, truncation, or a composition of them."""

TRUNCATION_MARKER = b"[... truncated ...]\n"
"""Written in front of a tail that had its beginning cut off."""

# A UTF-8 character is at most 4 bytes, so at most 3 continuation bytes precede its next start.
_MAX_CONTINUATION_BYTES = 3


def _identity(data: bytes) -> bytes:
    return data


def chain(*processors: Processor) -> Processor:
    """Compose processors left to right: ``chain(f, g)(data) == g(f(data))``."""
    if not processors:
        return _identity
    if len(processors) == 1:
        return processors[0]

    def chained(data: bytes) -> bytes:
        for processor in processors:
            data = processor(data)
        return data

    return chained


def truncate_tail(max_bytes: int, marker: bytes = TRUNCATION_MARKER) -> Processor:
    """Keep the end of the data, at most ``max_bytes`` bytes including ``marker``.

    The end of a log is what explains a failure, so the beginning is dropped and ``marker``
    written in its place. The kept tail never starts inside a UTF-8 character. This processor does
    not redact: apply it after redaction, or use :func:`capped_tail`.
    """
    if max_bytes < len(marker):
        raise ValueError(f"max_bytes ({max_bytes}) must leave room for the marker ({len(marker)})")
    keep = max_bytes - len(marker)

    def truncate(data: bytes) -> bytes:
        if len(data) <= max_bytes:
            return data
        start = len(data) - keep
        limit = min(start + _MAX_CONTINUATION_BYTES, len(data))
        while start < limit and 0x80 <= data[start] < 0xC0:
            start += 1
        return marker + data[start:]

    return truncate


def capped_tail(redactor: Redactor, max_bytes: int, marker: bytes = TRUNCATION_MARKER) -> Processor:
    """Redact, then keep the last ``max_bytes`` bytes: the safe order for capped log excerpts.

    A secret straddling the cut point was already replaced by a mask, so the cut can at worst
    shorten the mask; it cannot leave a readable piece of the secret behind.
    """
    return chain(redactor.redact, truncate_tail(max_bytes, marker))
