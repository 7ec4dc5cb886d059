"""``python -m spikehq.search``: the SpikeHQ search command line (see :mod:`spikehq.search.cli`)."""

import sys

from .cli import main

sys.exit(main())
