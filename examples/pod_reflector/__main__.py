"""``python -m examples.pod_reflector``: see :mod:`examples.pod_reflector.main`."""

import sys

from examples.pod_reflector.main import main

sys.exit(main())
