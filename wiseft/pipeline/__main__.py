"""``python -m wiseft.pipeline make|check|record``: the notebooks' generator (see :mod:`.notebooks`)."""

import sys

from .notebooks import main

sys.exit(main())
