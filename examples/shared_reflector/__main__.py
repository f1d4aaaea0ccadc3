"""``python -m examples.shared_reflector``: see :mod:`examples.shared_reflector.main`."""

import sys

from examples.shared_reflector.main import main

sys.exit(main())
