"""``live serve``, unchanged, with ICE candidates restricted to 127.0.0.1 (see loopback.py).

Usage: ``python -m tests.bench.serve_live serve --data DIR --host 127.0.0.1 --port PORT``
with ``LIVE_*`` variables in the environment, exactly as the ``live`` command.
"""

from __future__ import annotations

import sys

from tests.bench.loopback import loopback_only

if __name__ == "__main__":
    loopback_only()
    from live.cli import main

    sys.exit(main(sys.argv[1:]))
