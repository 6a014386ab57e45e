"""``python -m drift_core ...``: the command line (see drift_core.cli)."""

import sys

from .cli import main

sys.exit(main())
