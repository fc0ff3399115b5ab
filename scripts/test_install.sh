#!/usr/bin/env bash
# The install lines of README.md ("Install") that scripts/test_light.sh (the built wheel) does not
# cover, as a user runs them: in a fresh clone and a fresh virtual environment, `pip install .`,
# then the git URL form (`pip install "git+file://..."`, as `git+https://` from a hosted
# repository), then `pip install -e .`; after each, `charclf predict Jones` answers from outside
# the clone with the shipped model, and the installed package carries its LICENSE. The train
# extra's editable form is what scripts/setup.sh installs (the README's two commands run it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CHARCLF_HOME="$work/home"  # an empty home: the shipped model answers
git clone -q "$PWD" "$work/charclf"
"$PYTHON" -m venv "$work/venv"
bin="$work/venv/bin"

mkdir "$work/elsewhere"  # not the clone's parent: there `import charclf` would find the clone's folder
check() {  # $1: the install form just run; answers from outside the clone
  (cd "$work/elsewhere"
    "$bin/charclf" predict Jones | grep -q "^Jones  English" || { echo "test_install ($1): predict failed" >&2; exit 1; }
    "$bin/python" - "$1" <<'PY'
import sys
from importlib import metadata

import charclf

files = [str(f) for f in metadata.files("charclf") or []]
assert any(f.endswith("LICENSE") for f in files), f"{sys.argv[1]}: no LICENSE among the installed files"
print(f"test_install ({sys.argv[1]}): charclf {charclf.__version__} from {charclf.__file__} predicts; LICENSE installed")
PY
  )
}

"$bin/python" -m pip install -q "$work/charclf"
check "pip install ."
"$bin/python" -m pip install -q --force-reinstall --no-deps "git+file://$work/charclf"
check "pip install git+URL"
"$bin/python" -m pip install -q --no-deps -e "$work/charclf"
check "pip install -e ."
(cd "$work/elsewhere" && "$bin/python" -c "import charclf, sys; assert charclf.__file__.startswith(sys.argv[1])" "$work/charclf")
