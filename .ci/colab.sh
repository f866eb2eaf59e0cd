#!/usr/bin/env bash
# The kit on Google Colab's versions: a fresh venv with Colab's pins (.ci/colab-pins.txt), then the kit
# installed exactly as the notebooks' Colab cell installs it (`pip install -e .`, no extras), then:
#   1. the pinned packages must be unchanged (the Colab cell may not upgrade or downgrade any of them);
#   2. the tests that do not need JupyterLab or a browser (Colab has neither) and every notebook, fast mode.
#
#   bash .ci/colab.sh                      # venv in /tmp/jepa_lite_colab, Python from $PYTHON (python3)
#   PYTHON=python3.13 VENV=/tmp/c bash .ci/colab.sh
#
# It downloads torch 2.11 from PyPI (with its CUDA libraries, a few GB) and takes long on 2 cores:
# run it by hand, not in CI. Exit code: pytest's (0 = passed), 3 = a pin was changed by the install.
# The venv set-up is shared with .ci/floors.sh (.ci/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-/tmp/jepa_lite_colab}
PINS=.ci/colab-pins.txt

source .ci/venv.sh
fresh_venv "$VENV"
echo "+ Colab's pins: $(grep -v '^#' "$PINS" | tr '\n' ' ')"
"${pip[@]}" install -q -r "$PINS"

echo "+ the Colab cell's install: pip install -e ."
"${pip[@]}" install -q -e .
installed_exactly "$PINS" || { echo "colab.sh: the kit's install changed Colab's pins (above)" >&2; exit 3; }
echo "+ pins unchanged by the kit's install"

# the test runner, held to the pins as well (nbval brings nbformat and jupyter_client; ipykernel runs notebooks)
"${pip[@]}" install -q -c "$PINS" pytest nbval ipykernel
fast_suite "$VENV" --ignore=tests/test_browser.py --ignore=tests/test_lab.py
