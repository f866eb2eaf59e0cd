"""`python -m jepa_lite.paired`: the paired trainer's command line (cli.py)."""

from ..distributed import exit_process
from .cli import main

exit_process(main())  # sys.exit, or os._exit under torchrun and after a stop signal (exit_process says why)
