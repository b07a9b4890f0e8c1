"""Test helpers shipped with the package, for this project's tests and for its users' tests."""

from async_pipeline.testing.canary import (
    CanaryHit,
    canary_forms,
    canary_samples,
    new_canary,
    scan_for_canary,
)

__all__ = ["CanaryHit", "canary_forms", "canary_samples", "new_canary", "scan_for_canary"]
