"""``python -m core``: see :mod:`core.entrypoints.cli`."""

import sys

from core.entrypoints.cli import main

sys.exit(main())
