"""``python -m examples.typed_operator``: see :mod:`examples.typed_operator.main`."""

import sys

from examples.typed_operator.main import main

sys.exit(main())
