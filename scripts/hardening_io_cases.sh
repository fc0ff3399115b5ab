#!/usr/bin/env bash
# The output, table, prior and .onnx cases of docs/hardening.md ("Outputs, tables and .onnx files"),
# through the real CLI: one Markdown table row per case (exit code, peak memory, the last line on
# stderr, what became of the files).
# Usage, from the project root: PATH=$PWD/.venv/bin:$PATH bash scripts/hardening_io_cases.sh [WORKDIR]
# CHARCLF overrides the command (e.g. "python -m charclf" with PYTHONPATH on another tree). Each case
# runs with a 120 s limit, and those that grow memory without bound under a 4 GB address-space limit
# (ulimit -v), so that the machine is never exhausted. Nothing outside WORKDIR is written.
# shellcheck source=scripts/hardening_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/hardening_lib.sh"
state() { [ -e "$1" ] && printf '%s is %s, starts %s' "$1" "$(stat -c %F "$1")" "$(head -c 12 "$1" | tr -c '[:alnum:],.=' '?')"; }

mkdir -p ds; printf 'Smith\nJones\nTaylor\nBrown\nWilliams\nWilson\nJohnson\nDavies\n' > ds/English.txt
printf 'Rossi\nRusso\nFerrari\nEsposito\nBianchi\nRomano\nColombo\nRicci\n' > ds/Italian.txt
printf 'Sato\nSuzuki\nTakahashi\nTanaka\nWatanabe\nIto\nYamamoto\nNakamura\n' > ds/Japanese.txt
charclf train --data ds --epochs 1 --hidden-size 8 --no-progress --out m.pt >/dev/null 2>&1 || { echo "training failed"; exit 1; }
printf 'id,name\n1,Smith\n2,Rossi\n3,Sato\n' > t.csv
M=(--checkpoint m.pt)
echo '| case | result |'
echo '|---|---|'

# Outputs.
cp m.pt e.pt; c export e.pt --checkpoint e.pt
row "export e.pt --checkpoint e.pt" "e.pt now: $(charclf info --checkpoint e.pt 2>&1 | tail -n 1 | cut -c1-80)"
cp m.pt keep.pt; c predict --csv t.csv --column name --out keep.pt "${M[@]}"; row "predict --csv --out a checkpoint" "$(state keep.pt)"
cp -r ds ds2; c predict --csv t.csv --column name --out ds2/English.txt "${M[@]}"; row "predict --csv --out ds2/English.txt" "$(state ds2/English.txt)"
cp t.csv in.csv; c predict --csv in.csv --column name --out in.csv --encoding-errors replace "${M[@]}"
row "predict --csv in.csv --out in.csv" "in.csv now $(head -n 1 in.csv)"
cp t.csv in2.csv; ln -s in2.csv link.csv; c predict --csv in2.csv --column name --out link.csv "${M[@]}"
row "predict --csv in2.csv --out a symlink to it" "in2.csv now $(head -n 1 in2.csv)"
c confusion --data ds --out keep.pt "${M[@]}"; row "confusion --out a checkpoint" "$(state keep.pt)"
c explain Jones --plot ds2/Italian.txt "${M[@]}"; row "explain --plot ds2/Italian.txt" "$(state ds2/Italian.txt)"
echo "id,name" > notes.csv; c evaluate --data ds --plot --out notes.csv "${M[@]}"; row "evaluate --plot --out notes.csv" "$(state notes.csv)"
c calibration --data ds --plot --out keep.pt "${M[@]}"; row "calibration --plot --out a checkpoint" "$(state keep.pt)"
c predict --csv t.csv --column name --out /dev/full "${M[@]}"; row "predict --csv --out /dev/full"
mkfifo fifo.csv; c predict --csv t.csv --column name --out fifo.csv "${M[@]}"; row "predict --csv --out a FIFO" "$(stat -c %F fifo.csv)"
c predict --csv t.csv --column name --out /dev/null "${M[@]}"; row "predict --csv --out /dev/null" "$(stat -c %F /dev/null)"
c predict --csv t.csv --column name --out again.csv "${M[@]}"; c predict --csv t.csv --column name --out again.csv "${M[@]}"
row "predict --csv --out an earlier output (twice)"

# Unbounded reads.
run bash -c "$CHARCLF predict --csv - --column name ${M[*]} <&-"; row "predict --csv - with stdin closed"
c predict --csv /dev/zero --column name "${M[@]}"; row "predict --csv /dev/zero"
$PY -c "import sys; sys.stdout.write('name,' + 'x' * 200_000_000)" > wide.csv
c predict --csv wide.csv --column name "${M[@]}"; row "predict --csv, a 200 MB line without a newline"
$PY -c "import sys; sys.stdout.write('id,name\n1,\"' + 'x' * 100_000_000 + '\"\n')" > cell.csv
c predict --csv cell.csv --column name "${M[@]}"; row "predict --csv, a 100 MB quoted cell"
$PY -c "print('[' * 100_000 + ']' * 100_000)" > deep.json
c predict Jones --prior deep.json "${M[@]}"; row "--prior, JSON nested 100,000 deep"
c predict Jones --prior /dev/zero "${M[@]}"; row "--prior /dev/zero"
$PY -c "print('{\"English\": 1e308, \"Italian\": 1e308, \"Japanese\": 1}')" > big.json
c predict Jones --json --prior big.json "${M[@]}"; row "--prior weights of 1e308" "stdout: $(head -c 100 "$w/out")"
$PY -c "print(('\ufdfa' * 1000 + '\n') * 12, end='')" > fdfa.txt
c predict --file fdfa.txt "${M[@]}"; row "--file, 12 lines of 1,000 U+FDFA" "stdout: $(head -c 90 "$w/out")"

# Tables.
printf 'id,name\n1,"Jo\rnes"\n2,Smith\n3,Rossi\n' > cr.csv
c predict --csv cr.csv --column name "${M[@]}"
row "a quoted cell with a bare CR (3 rows in)" "rows read back from the output: $($PY -c "import csv,sys; print(len(list(csv.reader(open('$w/out', newline=''))))-1)")"
cp "$w/out" crout.csv; c predict --csv crout.csv --column name "${M[@]}"; row "... and reading that output again"
printf 'id,name\n1,=HYPERLINK("x")\n2,+Smith\n' > formula.csv
PYTHONPATH=$root/tests $PY -c "
import hostile; from pathlib import Path
hostile.mutated(Path('m.pt'), Path('formula.pt'), lambda p: p.update(labels=['=1+2', '@SUM(A1)', '-3'], scripts={}))"
c predict --csv formula.csv --column name -k 1 --checkpoint formula.pt
row "labels '=1+2', '@SUM(A1)', '-3' in the model" "stdout: $(tail -n 1 "$w/out" | cut -c1-60)"
c predict --csv formula.csv --column name -k 1 --excel-safe --checkpoint formula.pt; row "same, --excel-safe" "stdout: $(tail -n 1 "$w/out" | cut -c1-60)"
c predict --csv t.csv --column name --column name -k 1 "${M[@]}"; row "--column name --column name" "header: $(head -n 1 "$w/out")"
c predict --csv t.csv --column name --delimiter '"' "${M[@]}"; row "--delimiter '\"'" "stdout: $(head -c 60 "$w/out" | tr '\n' ' ')"
c predict --csv t.csv --column name --delimiter ' ' "${M[@]}"; row "--delimiter ' '" "stdout: $(head -c 60 "$w/out" | tr '\n' ' ')"
printf 'id,name\r1,Smith\r2,Rossi\r' > cr_only.csv
c predict --csv cr_only.csv --column name -k 1 "${M[@]}"; row "CR-only line ends" "stdout lines: $(wc -l < "$w/out")"
$PY -c "print(','.join(f'c{i}' for i in range(1_000_000))); print(','.join('x' * 1_000_000))" > wide_header.csv
c predict --csv wide_header.csv --column name "${M[@]}"; row "a missing column of a 10^6-column table" "stderr: $(stat -c %s "$w/err") bytes"

# .onnx files (the shipped model's export, its metadata or graph changed).
SHIPPED=$($PY -c "from charclf.files.locations import shipped_checkpoint as s; print(s().with_suffix('.onnx'))")
PYTHONPATH=$root/tests $PY - "$SHIPPED" <<'PY'
import json, sys
from pathlib import Path
import hostile
good = Path(sys.argv[1])
desc = json.loads({p.key: p.value for p in __import__("onnx").load(str(good)).metadata_props}["charclf.description"])
cfg, labels, alphabet = desc["model_config"], desc["labels"], desc["alphabet"]
cal = {**desc["calibration"], "train_counts": desc["calibration"]["train_counts"][:-1]}
hostile.onnx_with(good, Path("fewer_labels.onnx"), {"labels": labels[:-1], "model_config": {**cfg, "n_classes": len(labels) - 1}, "calibration": cal, "scripts": {}})
extra = "".join(c for c in "0123456789" if c not in alphabet)
hostile.onnx_with(good, Path("long_alphabet.onnx"), {"alphabet": alphabet + extra, "model_config": {**cfg, "n_letters": len(alphabet + extra)}})
upper = "".join(dict.fromkeys(alphabet.upper()))
hostile.onnx_with(good, Path("upper.onnx"), {"alphabet": upper, "model_config": {**cfg, "n_letters": len(upper), "lowercase": True}})
hostile.onnx_with(good, Path("script_list.onnx"), {"scripts": {"probabilities": {labels[0]: ["Latin", 1]}}})
hostile.onnx_with(good, Path("script_big.onnx"), {"scripts": {"probabilities": {labels[0]: {"Latin": 1e308}}}})
hostile.onnx_with(good, Path("deep.onnx"), "[" * 100_000 + "]" * 100_000)
hostile.foreign_onnx(good, Path("foreign.onnx"))
hostile.hungry_onnx(good, Path("hungry.onnx"))
PY
for f in fewer_labels long_alphabet upper script_list script_big deep foreign hungry; do
  c predict Jones --json --checkpoint "$f.onnx"; row "predict --checkpoint $f.onnx" "stdout: $(head -c 100 "$w/out")"
done
c info --checkpoint fewer_labels.onnx; row "info --checkpoint fewer_labels.onnx" "stdout: $(grep -c . "$w/out") lines"

# predict_dataframe (the pandas API).
for cells in "[True, float('inf'), b'Hinton', ['Jones']]" "['Jones']"; do
  for opts in "" ", k=0" ", min_confidence=float('nan')"; do
    [ "$cells" != "['Jones']" ] && [ -n "$opts" ] && continue
    [ "$cells" = "['Jones']" ] && [ -z "$opts" ] && continue
    run $PY -c "import pandas as pd; from charclf.predict.tables import predict_dataframe as p
print(p(pd.DataFrame({'name': $cells})$opts)[['label', 'error']].values.tolist())"
    row "predict_dataframe, name cells $cells$opts" "stdout: $(head -c 100 "$w/out")"
  done
done

# data fetch killed by SIGTERM mid-download (a local server that sends 1 KB, then waits).
$PY - <<'PY' &
import http.server, time
class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2000000"); self.end_headers()
        self.wfile.write(b"x" * 1024); self.wfile.flush(); time.sleep(30)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 8765), Slow).handle_request()
PY
server=$!; sleep 1
$CHARCLF data fetch --dest fetched --url http://127.0.0.1:8765/data.zip >"$w/out" 2>"$w/err" & pid=$!
sleep 3; kill -TERM $pid; wait $pid; rc=$?; echo 0 > "$w/mem"
row "SIGTERM during data fetch" "left beside --dest: $(ls -A | grep -c '^\.fetched\.fetch-') partial download folder(s)"
kill $server 2>/dev/null; wait $server 2>/dev/null
