"""Check the claims' tests against a source directory: python3 tests/check.py SRC_DIR."""

import sys

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "src")

from pricing import subtotal, total

TESTS = {
    "test_subtotal_adds_prices": lambda: subtotal([10.0, 5.0]) == 15.0,
    "test_discount_is_a_fraction_of_the_subtotal": lambda: abs(total([100.0], 0.1) - 90.0) < 1e-9,
}

failed = 0
for title, check in TESTS.items():
    ok = check()
    print(("PASS " if ok else "FAIL ") + title)
    failed += not ok
sys.exit(1 if failed else 0)
