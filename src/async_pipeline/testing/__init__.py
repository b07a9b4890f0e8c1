"""Test helpers shipped with the package, for this project's tests and for its users' tests."""

from async_pipeline.testing.canary import (
    CanaryHit,
    canary_forms,
    canary_samples,
    new_canary,
    scan_for_canary,
)
from async_pipeline.testing.fake_executor import FakeCall, FakeCommand, FakeExecutor

__all__ = [
    "CanaryHit",
    "FakeCall",
    "FakeCommand",
    "FakeExecutor",
    "canary_forms",
    "canary_samples",
    "new_canary",
    "scan_for_canary",
]
