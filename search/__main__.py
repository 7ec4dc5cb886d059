"""``python -m spikehq.search``: the SpikeHQ search command line (see :mod:`spikehq.search.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":      # the guard keeps --jobs' spawned workers from re-running the command
    sys.exit(main())
