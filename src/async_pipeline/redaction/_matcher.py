"""Finding every occurrence of many byte patterns in a buffer, fast enough to sit in every sink.

A run with twenty secrets has well over a hundred patterns once each is spelled in every encoding.
One ``bytes.find`` pass per pattern costs a full scan each, and an alternation regex tries a branch
at almost every position of ordinary text; both measured several times slower than the target
(``bench/redaction_throughput.py --compare-designs``). Instead, a prefilter answers "could any
pattern occur in this buffer, and which?" with one C-level pass: the buffer is read as aligned
words and intersected with the set of words the patterns contain. Only patterns whose words were
seen are then located exactly with ``bytes.find``.

Why aligned words are enough: an occurrence of a pattern at least ``2 * width - 1`` bytes long
always contains a whole word starting at a multiple of ``width`` in the buffer, and that word is
one of the pattern's first ``width`` substrings of that length. 8-byte words serve patterns of 15
bytes or more. When there are many patterns of 7 to 14 bytes (short secrets), one pass over
4-byte words serves every pattern of 7 bytes or more instead: it reads twice as many words, so it
costs about two 8-byte passes, which is less than an 8-byte pass plus a ``find`` per short
pattern. Patterns under 7 bytes, and pattern sets too small to repay a pass, are searched
directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

__all__ = ["PREFILTER_MIN_PATTERNS", "Span", "SpanFinder"]

Span = tuple[int, int]

# A pattern this long always holds one aligned word of the width: 2 * width - 1 bytes.
_SHORT_INDEXED = 2 * 4 - 1
_LONG_INDEXED = 2 * 8 - 1

PREFILTER_MIN_PATTERNS = 12
"""Below this many patterns a word size serves, ``bytes.find`` passes are cheaper than a prefilter.

Measured: one pass over 8-byte words costs about as much as a dozen ``find`` passes of patterns
15 bytes long or more; one over 4-byte words, as a dozen of patterns of 7 to 14 bytes.
"""


class _WordIndex:
    """Which of its patterns might occur in a buffer, judged from the buffer's aligned words."""

    __slots__ = ("_format", "_index", "_keys", "_width", "patterns")

    def __init__(self, width: int, word_format: Literal["Q", "I"], patterns: list[bytes]) -> None:
        self._width = width
        self._format = word_format
        self.patterns = tuple(patterns)
        index: dict[int, set[bytes]] = {}
        for pattern in patterns:
            for offset in range(width):
                # Decoded through the same cast as the scan, so byte order cannot disagree.
                word = memoryview(pattern[offset : offset + width]).cast(word_format)[0]
                index.setdefault(word, set()).add(pattern)
        self._index = {word: tuple(sorted(found)) for word, found in index.items()}
        self._keys = frozenset(self._index)

    def suspects(self, buffer: bytes) -> set[bytes]:
        usable = len(buffer) - len(buffer) % self._width
        hits = self._keys.intersection(memoryview(buffer)[:usable].cast(self._format))
        return {pattern for word in hits for pattern in self._index[word]}


class SpanFinder:
    """Locate all occurrences (overlapping ones too) of a fixed set of byte patterns."""

    __slots__ = ("_always", "_index", "max_length", "pattern_count")

    def __init__(self, patterns: Iterable[bytes]) -> None:
        unique = sorted({pattern for pattern in patterns if pattern})
        short = [pattern for pattern in unique if _SHORT_INDEXED <= len(pattern) < _LONG_INDEXED]
        long = [pattern for pattern in unique if len(pattern) >= _LONG_INDEXED]
        index: _WordIndex | None = None
        if len(short) >= PREFILTER_MIN_PATTERNS:
            index = _WordIndex(4, "I", short + long)
        elif len(long) >= PREFILTER_MIN_PATTERNS:
            index = _WordIndex(8, "Q", long)
        served = set() if index is None else set(index.patterns)
        remaining = [pattern for pattern in unique if pattern not in served]
        self._always: tuple[bytes, ...] = tuple(remaining)
        self._index = index
        # A stream must hold back one byte less than the longest pattern.
        self.max_length: int = max((len(pattern) for pattern in unique), default=0)
        self.pattern_count: int = len(unique)

    def spans(self, buffer: bytes, covered_prefix: int = 0) -> list[Span]:
        """Return the sorted, merged byte ranges of ``buffer`` covered by any occurrence.

        ``covered_prefix`` marks the first bytes as already covered by an occurrence that began
        before this buffer, so a masked run carried over a chunk boundary stays one run.
        Overlapping and touching occurrences merge into one range.
        """
        candidates: Iterable[bytes] = self._always
        if self._index is not None:
            suspects = self._index.suspects(buffer)
            if suspects:
                candidates = (*self._always, *suspects)
        found: list[Span] = [(0, covered_prefix)] if covered_prefix > 0 else []
        for pattern in candidates:
            size = len(pattern)
            at = buffer.find(pattern)
            while at >= 0:
                found.append((at, at + size))
                at = buffer.find(pattern, at + 1)
        return _merge(found) if found else found


def _merge(found: list[Span]) -> list[Span]:
    found.sort()
    merged: list[Span] = []
    start, end = found[0]
    for next_start, next_end in found[1:]:
        # Touching ranges merge too: two adjacent secrets become one mask, whatever the chunking.
        if next_start <= end:
            end = max(end, next_end)
        else:
            merged.append((start, end))
            start, end = next_start, next_end
    merged.append((start, end))
    return merged
