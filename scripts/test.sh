#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up, then pytest (extra arguments go to pytest).
# Tests on the real dataset read $CHARCLF_DATA, else ./data/names (see data/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
"$VENV/bin/python" -m pytest -q "$@"
