"""``python -m ella_server``: the same as ``ella-dist serve``."""

import sys

from .app import main

sys.exit(main())
