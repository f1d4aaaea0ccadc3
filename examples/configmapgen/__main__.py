"""``python -m examples.configmapgen``: see :mod:`examples.configmapgen.main`."""

import sys

from examples.configmapgen.main import main

sys.exit(main())
