"""pytest settings for the whole repository (tests/ and notebooks/): a notebook cell that runs too long fails.

nbval waits 2000 s for a cell by default; a cell that hangs would hold CI for half an hour and then
fail with no clear cause. Here a cell gets `JEPA_LITE_CELL_TIMEOUT` seconds (300 in fast mode, 1200
in full mode, when the variable is unset); past that nbval interrupts the kernel and the test fails
with "Timeout of … seconds exceeded". `--nbval-cell-timeout` on the command line wins.
"""

import os

CELL_TIMEOUT_ENV = "JEPA_LITE_CELL_TIMEOUT"
NBVAL_DEFAULT = 2000  # nbval's own default: the option was not given


def cell_timeout() -> float:
    if os.environ.get(CELL_TIMEOUT_ENV):
        return float(os.environ[CELL_TIMEOUT_ENV])
    return 300.0 if os.environ.get("JEPA_LITE_FAST") == "1" else 1200.0


def pytest_configure(config):
    if getattr(config.option, "nbval_cell_timeout", None) == NBVAL_DEFAULT:
        config.option.nbval_cell_timeout = cell_timeout()
