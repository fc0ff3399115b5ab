#!/usr/bin/env bash
# The light install, as users get it: builds the wheel and the sdist (python -m build), installs the
# wheel (with its serve extra) into a fresh virtual environment, checks that torch is not there,
# then runs predict, explain, predict --csv, info and one request to serve from it, and compares its
# answers for every name of the test split (split seed 0) with the full install's torch backend:
# the same top label, probabilities within 1e-5. Then the same comparison with the lowest
# onnxruntime the package allows. Prints both environments' sizes on disk.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FULL=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
LOWEST_ONNXRUNTIME=1.19.0  # pyproject.toml: onnxruntime>=1.19,<2
export CHARCLF_DATA=${CHARCLF_DATA:-$(cd .. && pwd)/shared/data/names}
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export CHARCLF_HOME="$work/home"  # no model trained elsewhere is picked up: the shipped one
light="$work/light/bin"

"$FULL/bin/python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
wheel=$(ls "$work"/dist/charclf-*.whl)
ls "$work"/dist/charclf-*.tar.gz >/dev/null
"$PYTHON" -m venv "$work/light"
"$light/python" -m pip install -q "$wheel"
core_mb=$(du -sm "$work/light" | cut -f1)  # what the core install takes
"$light/python" -m pip install -q "$wheel[serve]"
if "$light/python" -c "import torch" 2>/dev/null; then
  echo "test_light: torch is installed in the light environment" >&2
  exit 1
fi
# The installed package (run outside the checkout, so that it is not the one imported) carries
# every wing and its files.
(cd "$work" && "$light/python" - <<'PY'
import sys
from importlib import resources
for package, name in [("charclf.data", "names.sha256"), ("charclf.server", "web/index.html"),
                      ("charclf", "pretrained/model.pt"), ("charclf", "pretrained/model.onnx")]:
    assert resources.files(package).joinpath(name).is_file(), f"the installed charclf lacks {package}: {name}"
import charclf.cli  # noqa: F401 (the command's modules import without torch)
assert charclf.cli.__file__.startswith(sys.prefix), charclf.cli.__file__
from importlib import metadata
licence = [f for f in metadata.files("charclf") if f.name == "LICENSE"]
assert licence and "MIT License" in licence[0].read_text(), "the wheel carries no LICENSE"
print("test_light: the installed package holds its data files and its LICENSE")
PY
)

# Every command a light install offers, from the installed console script, outside the checkout.
(cd "$work"
  printf 'surname,city\nHinton,London\nИванов,Moscow\n' > people.csv
  "$light/charclf" predict Jones | grep -q "^Jones  English"
  "$light/charclf" explain Hinton --json | "$light/python" -c "import json, sys; assert json.load(sys.stdin)['label'] == 'English'"
  "$light/charclf" predict --csv people.csv --column surname | grep -q "^Иванов,Moscow,Russian,"
  "$light/charclf" info | grep -q "exported:"
  port=$("$light/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  "$light/charclf" serve --port "$port" 2>serve.log & server=$!
  for _ in $(seq 100); do
    if "$light/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  "$light/python" -c "import json, urllib.request as u
row = json.load(u.urlopen('http://127.0.0.1:$port/api/predict?name=Jones', timeout=5))
assert row['label'] == 'English', row"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  echo "test_light: predict, explain, --csv, info and serve answer from the wheel without torch"
  "$light/python" - "$light/charclf" <<'PY'
import statistics, subprocess, sys, time
times = []
for _ in range(7):
    started = time.perf_counter()
    subprocess.run([sys.argv[1], "predict", "Jones"], check=True, capture_output=True)
    times.append(time.perf_counter() - started)
print(f"test_light: `charclf predict Jones` from the wheel, without torch: best {min(times):.2f} s, "
      f"median {statistics.median(times):.2f} s of 7 fresh processes")
PY
)

# The test split's names, as the full install splits them.
"$FULL/bin/python" - "$CHARCLF_DATA" "$work/test_names.txt" <<'PY'
import sys
from charclf.data.dataset import load_dataset, split_dataset
names = [name for name, _ in split_dataset(load_dataset(sys.argv[1]), seed=0)["test"]]
open(sys.argv[2], "w").write("\n".join(names) + "\n")
PY
compare() {  # $1: what the light environment runs
  "$FULL/bin/charclf" predict --file "$work/test_names.txt" --json -k 18 --backend torch > "$work/torch.jsonl"
  "$light/charclf" predict --file "$work/test_names.txt" --json -k 18 > "$work/onnx.jsonl"
  "$FULL/bin/python" - "$work/torch.jsonl" "$work/onnx.jsonl" "$1" <<'PY'
import json, sys
torch_rows, onnx_rows = ([json.loads(line) for line in open(path)] for path in sys.argv[1:3])
assert len(torch_rows) == len(onnx_rows) > 1000, (len(torch_rows), len(onnx_rows))
gap = 0.0
for t, o in zip(torch_rows, onnx_rows):
    assert (t["name"], t["label"]) == (o["name"], o["label"]), (t, o)
    p = {row["label"]: row["probability"] for row in t["predictions"]}
    q = {row["label"]: row["probability"] for row in o["predictions"]}
    assert p.keys() == q.keys()
    gap = max(gap, max(abs(p[label] - q[label]) for label in p))
assert gap <= 1e-5, gap
print(f"test_light ({sys.argv[3]}): {len(torch_rows)} names: the same top label as torch, probabilities within "
      f"{gap:.1e} (limit 1e-5)")
PY
}
compare "onnxruntime $("$light/python" -c 'import onnxruntime; print(onnxruntime.__version__)')"
"$light/python" -m pip install -q "onnxruntime==$LOWEST_ONNXRUNTIME"
compare "the lowest supported onnxruntime, $LOWEST_ONNXRUNTIME"
echo "test_light: on disk, a fresh virtual environment with the wheel $core_mb MB (with the serve extra and the" \
     "lowest onnxruntime $(du -sm "$work/light" | cut -f1) MB); the full one ($FULL) $(du -sm "$FULL" | cut -f1) MB"
