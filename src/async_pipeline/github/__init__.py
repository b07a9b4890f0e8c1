"""Generated GitHub Actions workflows and package-manager tasks, kept current by ``sync``.

``render`` lowers a pipeline's triggers and jobs into a workflow document, ``select_jobs``
matches the event a workflow run was started by against the jobs' triggers (``github run``).
Nothing here runs at import time or reads the environment unless asked to.
"""

from __future__ import annotations

from async_pipeline.github._events import Event, branch_matches, read_event, select_jobs
from async_pipeline.github._workflow import Rendered, render

__all__ = ["Event", "Rendered", "branch_matches", "read_event", "render", "select_jobs"]
