"""`python -m jepa_lite.paired`: the paired trainer's command line (cli.py)."""

import sys

from .cli import main

sys.exit(main())
