"""Streaming secret redaction, applied once at every point where bytes leave the process.

Build one :class:`Redactor` per run from the resolved secret values; each sink (runner logs, run
records, agent transcripts, context packs, MCP responses, CLI output, cache entries) applies it at
its exit point: :meth:`Redactor.stream` for pipes and logs, :meth:`Redactor.redact` for whole
buffers, :meth:`Redactor.redact_json` for structured data, and :func:`capped_tail` for excerpts.
See ``docs/redaction.md``.
"""

from async_pipeline.redaction._json import JSONValue
from async_pipeline.redaction._processors import (
    TRUNCATION_MARKER,
    Processor,
    capped_tail,
    chain,
    truncate_tail,
)
from async_pipeline.redaction._redactor import (
    MASK,
    MIN_SECRET_LENGTH,
    RedactionStream,
    Redactor,
    SkippedSecret,
)

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "TRUNCATION_MARKER",
    "JSONValue",
    "Processor",
    "RedactionStream",
    "Redactor",
    "SkippedSecret",
    "capped_tail",
    "chain",
    "truncate_tail",
]
