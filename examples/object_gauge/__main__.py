"""``python -m examples.object_gauge``: see :mod:`examples.object_gauge.main`."""

import sys

from examples.object_gauge.main import main

sys.exit(main())
