"""Verify a proposed src/pricing.py: run the claims' tests with it in place, in a scratch copy.

python3 scripts/verify_proposal.py PROPOSAL. Exit 0 accepts the proposal, 1 rejects it.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

proposal = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as scratch:
    src = Path(scratch) / "src"
    shutil.copytree("src", src)
    shutil.copyfile(proposal, src / "pricing.py")
    result = subprocess.run([sys.executable, "tests/check.py", str(src)], check=False)
if result.returncode == 0:
    print(f"ACCEPT {proposal}: every claim passes; review it, then cp {proposal} src/pricing.py")
else:
    print(f"REJECT {proposal}: claims still fail with it in place")
sys.exit(result.returncode)
