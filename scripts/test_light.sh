#!/usr/bin/env bash
# The light install: charclf with only its onnx extra (no torch) predicts from an exported model as
# the full install does. Exports the shipped model with ./.venv (from scripts/setup.sh), installs
# '.[onnx]' into a fresh virtual environment, checks that torch is not there, then compares the
# answers for Jones and for every name of the test split (split seed 0, charclf's own split code):
# the same top label, probabilities within 1e-4.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FULL=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
export CHARCLF_DATA=${CHARCLF_DATA:-$(cd .. && pwd)/shared/data/names}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CHARCLF_HOME="$work/home"  # no model trained elsewhere is picked up: the shipped one

"$FULL/bin/charclf" export "$work/model.onnx"
"$PYTHON" -m venv "$work/light"
"$work/light/bin/python" -m pip install -q ".[onnx]"
if "$work/light/bin/python" -c "import torch" 2>/dev/null; then
  echo "test_light: torch is installed in the light environment" >&2
  exit 1
fi
# The installed package (run outside the checkout, so that it is not the one imported) carries
# every wing and its files.
(cd "$work" && "$work/light/bin/python" - <<'PY'
import sys
from importlib import resources
for package, name in [("charclf.data", "names.sha256"), ("charclf.server", "web/index.html"),
                      ("charclf", "pretrained/model.pt")]:
    assert resources.files(package).joinpath(name).is_file(), f"the installed charclf lacks {package}: {name}"
import charclf.cli  # noqa: F401 (the command's modules import without torch)
assert charclf.cli.__file__.startswith(sys.prefix), charclf.cli.__file__
print("test_light: the installed package holds its data files")
PY
)

# The test split's names, as the full install splits them.
"$FULL/bin/python" - "$CHARCLF_DATA" "$work/test_names.txt" <<'PY'
import sys
from charclf.data.dataset import load_dataset, split_dataset
names = [name for name, _ in split_dataset(load_dataset(sys.argv[1]), seed=0)["test"]]
open(sys.argv[2], "w").write("\n".join(names) + "\n")
PY
for input in "Jones" "--file $work/test_names.txt"; do
  # shellcheck disable=SC2086  # $input is the names' arguments
  "$FULL/bin/charclf" predict $input --json -k 18 > "$work/torch.jsonl"
  # shellcheck disable=SC2086
  "$work/light/bin/charclf" predict --checkpoint "$work/model.onnx" $input --json -k 18 > "$work/onnx.jsonl"
  "$FULL/bin/python" - "$work/torch.jsonl" "$work/onnx.jsonl" <<'PY'
import json, sys
torch_rows, onnx_rows = ([json.loads(line) for line in open(path)] for path in sys.argv[1:3])
assert len(torch_rows) == len(onnx_rows) > 0, (len(torch_rows), len(onnx_rows))
gap = 0.0
for t, o in zip(torch_rows, onnx_rows):
    assert (t["name"], t["label"]) == (o["name"], o["label"]), (t, o)
    p = {row["label"]: row["probability"] for row in t["predictions"]}
    q = {row["label"]: row["probability"] for row in o["predictions"]}
    assert p.keys() == q.keys()
    gap = max(gap, max(abs(p[label] - q[label]) for label in p))
assert gap < 1e-4, gap
print(f"test_light: {len(torch_rows)} name(s): the same top label, probabilities within {gap:.1e} (limit 1e-4)")
PY
done
