"""``python -m stance``: the same command line as ``stance``."""

import sys

from stance.cli import main

sys.exit(main())
