"""An agent step's transcript, ``.async/runs/<run-id>/agents/<task>.jsonl``: one JSON line per
request and response, redacted, each text in it capped like a task log.

The cap is the run's ``ASYNC_PIPELINE_MAX_LOG_BYTES`` (0: no cap). A longer text (the agent's
stdout, the prompt, an API reply) keeps its last bytes after a ``TRUNCATION_MARKER``, as task
logs do; it is redacted before it is cut, so a cut cannot leave part of a secret readable.
The prompt file beside the transcript keeps the whole prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from async_pipeline.redaction import TRUNCATION_MARKER, Redactor, truncate_tail

__all__ = ["Transcript"]


class Transcript:
    """Appends redacted, capped entries to one transcript file."""

    def __init__(self, path: Path, redactor: Redactor, cap: int) -> None:
        self.path = path
        self._redactor = redactor
        # Never below what the marker needs; the runner's own minimum is far above it.
        self._cap = max(cap, 2 * len(TRUNCATION_MARKER)) if cap else 0
        self._cut = truncate_tail(self._cap) if cap else None

    def record(self, entry: dict[str, Any]) -> None:
        redacted = self._redactor.redact_json(entry)
        with open(self.path, "ab") as handle:
            handle.write(orjson.dumps(self._capped(redacted)) + b"\n")

    def _capped(self, value: Any) -> Any:
        if self._cut is None:
            return value
        if isinstance(value, str):
            # A character is at most 4 bytes: shorter texts are under the cap unencoded.
            if len(value) * 4 <= self._cap:
                return value
            data = value.encode("utf-8", "surrogatepass")
            if len(data) <= self._cap:
                return value
            return self._cut(data).decode("utf-8", "replace")
        if isinstance(value, dict):
            return {key: self._capped(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._capped(item) for item in value]
        return value
