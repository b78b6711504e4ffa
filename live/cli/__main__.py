"""``python -m live.cli``: the ``live`` command."""

import sys

from . import main

sys.exit(main())
