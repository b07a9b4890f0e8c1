"""``python -m async_pipeline`` is the ``async-pipeline`` command."""

import sys

from async_pipeline.cli import main

sys.exit(main())
