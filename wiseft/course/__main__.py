"""``python -m wiseft.course strip SOLVED.ipynb -o STUDENT.ipynb``."""

import sys

from .strip import main

sys.exit(main())
