#!/usr/bin/env bash
# The main job on a fresh machine: set up, get the dataset if it is missing, train the default
# model (extra arguments go to `charclf train`), then predict a few names with it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
if [ -z "${CHARCLF_DATA:-}" ] && [ ! -d data/names ]; then
  charclf data fetch --dest data/names
fi
charclf train "$@"
charclf predict Hinton Jones Satoshi Nakamura Ivanov Rossi Schmidt Nguyen Ślusàrski O\'Brien
