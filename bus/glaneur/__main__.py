"""``python -m bus.glaneur --config FILE [--every SECONDS]`` (as ``demat glaneur``)."""

from __future__ import annotations

import sys

from bus.cli.glaneur import main

if __name__ == "__main__":
    sys.exit(main())
