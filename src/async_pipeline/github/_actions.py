"""The third-party actions a generated workflow uses, pinned by full commit SHA.

A tag such as ``v4`` can be moved by whoever controls the action's repository; a commit SHA
cannot, so the workflow runs exactly the code that was reviewed. The version is kept beside
the SHA for people (as a YAML comment) and in the lock file. All three run on Node 24: GitHub
retires the Node 20 action runtime in 2026.
"""

from __future__ import annotations

from dataclasses import dataclass

from async_pipeline.github._yaml import Commented

__all__ = ["CACHE", "CHECKOUT", "SETUP_PYTHON", "PinnedAction"]


@dataclass(frozen=True, slots=True)
class PinnedAction:
    """An action at one commit; ``version`` is the release tag that commit carries."""

    repository: str
    sha: str
    version: str

    @property
    def uses(self) -> Commented:
        """The ``uses:`` value, with the version as a trailing comment."""
        return Commented(f"{self.repository}@{self.sha}", self.version)

    def to_json(self) -> dict[str, str]:
        return {"sha": self.sha, "version": self.version}


CHECKOUT = PinnedAction("actions/checkout", "8e8c483db84b4bee98b60c0593521ed34d9990e8", "v6.0.1")
SETUP_PYTHON = PinnedAction(
    "actions/setup-python", "e797f83bcb11b83ae66e0230d6156d7c80228e7c", "v6.0.0"
)
CACHE = PinnedAction("actions/cache", "9255dc7a253b0ccc959486e2bca901246202afeb", "v5.0.1")
