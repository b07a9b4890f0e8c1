"""A deterministic stand-in for an agent CLI: reads the prompt on stdin, prints a proposal.

MOCK_AGENT_MODE=fix proposes the right fix; MOCK_AGENT_MODE=wrong proposes a plausible but
wrong one (so the verifier has something to reject).
"""

import os
import sys
from pathlib import Path

prompt = sys.stdin.read()
if "src/pricing.py" not in prompt:
    sys.exit("the prompt does not name the file to repair")
source = Path("src/pricing.py").read_text()
buggy = "return subtotal(prices) - discount"
if os.environ.get("MOCK_AGENT_MODE", "fix") == "wrong":
    fixed = "return subtotal(prices) * discount"
else:
    fixed = "return subtotal(prices) * (1 - discount)"
sys.stdout.write(source.replace(buggy, fixed))
