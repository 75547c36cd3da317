"""``python -m zklock.cli``: the same as the ``zklock`` console script."""

import sys

from . import main

sys.exit(main())
