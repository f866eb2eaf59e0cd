# Shared by .ci/floors.sh and .ci/colab.sh (sourced, not run): a fresh venv, a check that given versions
# are exactly what got installed, and the fast test suite in that venv.
#   fresh_venv DIR         remove DIR, create a venv there with $PYTHON (python3), upgrade its pip; sets $pip
#   installed_exactly FILE every `name==version` line of FILE (comments skipped) is what pip freeze lists;
#                          prints each one that is not and returns 1
#   fast_suite DIR ARG...  the README's test suite in fast mode with DIR's Python, plus ARG... (e.g. --ignore=...)

fresh_venv() {
  echo "+ fresh venv $1 ($("${PYTHON:-python3}" --version))"
  rm -rf "$1"
  "${PYTHON:-python3}" -m venv "$1"
  pip=("$1/bin/python" -m pip)
  "${pip[@]}" install -q --upgrade pip
}

installed_exactly() {
  local frozen line got bad=0
  frozen=$("${pip[@]}" freeze | tr "_" "-")
  while read -r line; do
    got=$(grep -i "^${line%%==*}==" <<< "$frozen" || true)
    if [ "${got,,}" != "${line,,}" ]; then echo "$(basename "$0"): wanted $line, installed ${got:-nothing}" >&2; bad=1; fi
  done < <(grep -v '^#' "$1" | grep .)
  return $bad
}

fast_suite() {
  local cmd="JEPA_LITE_FAST=1 $1/bin/python -m pytest --nbval-lax tests notebooks -p no:cacheprovider ${*:2}"
  echo "+ $cmd"
  bash -c "$cmd"
}
