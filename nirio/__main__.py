"""``python -m spikehq.nirio``: the import-nir command line."""

import sys

from .cli import main

sys.exit(main())
