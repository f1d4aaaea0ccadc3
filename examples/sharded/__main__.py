"""``python -m examples.sharded``: see :mod:`examples.sharded.main`."""

import sys

from examples.sharded.main import main

sys.exit(main())
