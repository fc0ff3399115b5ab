#!/usr/bin/env bash
# The cache, destructive-flag, memory and forged-id cases of docs/hardening.md ("Caches, forged
# ids and memory from small inputs"), through the real CLI and library: one Markdown table row per
# case (exit code, peak memory, wall time, the last line on stderr, what became of the files).
# Usage, from the project root: PATH=$PWD/.venv/bin:$PATH bash scripts/hardening_cache_cases.sh [WORKDIR]
# CHARCLF overrides the command (e.g. "python -m charclf" with PYTHONPATH on another tree). Each case
# runs with a 300 s limit and a 6 GB address-space limit (ulimit -v). Nothing outside WORKDIR is
# written: the engines' cache is looked for under WORKDIR/tmp (TMPDIR).
LIMIT_S=300 LIMIT_KB=6000000
# shellcheck source=scripts/hardening_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/hardening_lib.sh"
py() { run env PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}" "$PY" -c "$@"; }

ONNX=$($PY -c "from charclf.files.locations import shipped_checkpoint as s; print(s().with_suffix('.onnx'))")
PT=${ONNX%.onnx}.pt
PYTHONPATH=$root/tests $PY - "$ONNX" <<'PY'
import sys
from pathlib import Path
import charclf, hostile
good = Path(sys.argv[1])
swap = {"English": "Russian", "Russian": "English"}
hostile.onnx_relabelled(good, Path("swapped.onnx"), [swap.get(x, x) for x in charclf.load(good).labels])
hostile.onnx_with(good, Path("odd_id.onnx"), **{"charclf.source": "\x1b[31mred\nforged"})
hostile.mutated(good.with_suffix(".pt"), Path("card.pt"), lambda p: p["metrics"].update(test={"accuracy": "high"}))
hostile.mutated(good.with_suffix(".pt"), Path("sizes.pt"), lambda p: p["train_config"].update(split_sizes=[1, 2, 3]))
PY
echo '| case | result |'
echo '|---|---|'

# 1. The engines' cache in $TMPDIR (here WORKDIR/tmp), made by someone else and world-writable: first
# holding a label-swapped model of the same size under the genuine one's file name (both naming
# schemes), then only .part links to a file of the victim's.
mkdir -p tmp/charclf-models-"$(id -u)" && chmod 777 tmp/charclf-models-"$(id -u)"
echo mine > victim.txt
engine() {  # engine PLANT: Dask (in this process) classifies Smith and Jones, the cache planted first
  TMPDIR=$w/tmp py "
import hashlib, os, shutil, threading, pandas as pd, dask, dask.dataframe as dd, charclf.dask
from pathlib import Path
sha = hashlib.sha256(Path('$ONNX').read_bytes()).hexdigest()
cache = Path('tmp/charclf-models-%d' % os.getuid())
for name in (sha[:16], sha[:32]):
    (cache / f'{name}.onnx').unlink(missing_ok=True)
    if $1:
        shutil.copy('swapped.onnx', cache / f'{name}.onnx')
    for part in (f'{name}.onnx.{os.getpid()}.part', f'{name}.onnx.{os.getpid()}.{threading.get_ident()}.part'):
        (cache / part).unlink(missing_ok=True)
        (cache / part).symlink_to(Path('victim.txt').resolve())
with dask.config.set(scheduler='synchronous'):
    out = charclf.dask.classify(dd.from_pandas(pd.DataFrame({'name': ['Smith', 'Jones']}), npartitions=1), 'name',
                                model='$ONNX', k=1).compute()
print(list(out['label']), set(out['model']))"
}
engine True; row "Dask classify, a same-size label-swapped model planted in the cache" "stdout: $(head -c 100 "$w/out")"
engine False; row "Dask classify, .part links planted in the cache" "victim.txt now: $(head -c 12 victim.txt | tr -c '[:print:]' '?')"

# 2. data fetch --force over a folder of the user's own files.
mkdir -p mine/photos; echo cat > mine/photos/cat.jpg; echo thesis > mine/thesis.tex
$PY - <<'PY'
import zipfile
from charclf.data.fetch import read_manifest
import hashlib
with zipfile.ZipFile("names.zip", "w", zipfile.ZIP_DEFLATED) as z, open("names.sha256", "w") as sums:
    for name in read_manifest():  # a small archive of the dataset's files, and its own checksums
        z.writestr(f"data/names/{name}", "x\n")
        sums.write(f"{hashlib.sha256(b'x' + bytes([10])).hexdigest()}  {name}\n")
with zipfile.ZipFile("bomb.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(40):
        z.writestr(f"data/names/L{i}.txt", b"\0" * (60 << 20))
with zipfile.ZipFile("bomb18.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for name in read_manifest():
        z.writestr(f"data/names/{name}", b"\0" * (60 << 20))
PY
c data fetch --dest mine --url "file://$w/names.zip" --manifest names.sha256
row "data fetch --dest mine (holding thesis.tex, photos/)"
c data fetch --dest mine --url "file://$w/names.zip" --manifest names.sha256 --force
row "data fetch --dest mine --force" "left in mine: $(ls mine | tr '\n' ' ')"

# 9. A zip bomb: 40 members of 60 MB (2.4 GB) in a 2.4 MB archive.
c data fetch --dest bombed --url "file://$w/bomb.zip"; row "data fetch of a zip of 40 x 60 MB members ($(stat -c %s bomb.zip) bytes)"
c data fetch --dest bombed --url "file://$w/bomb18.zip"
row "data fetch of a zip of the 18 names files, 60 MB each ($(stat -c %s bomb18.zip) bytes)"

# 3. 300 distinct names of 1,000 letters (300 KB).
$PY -c "
import random; r = random.Random(0)
print(''.join(''.join(r.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(1000)) + '\n' for _ in range(300)), end='')" > long.txt
c predict --file long.txt -k 1; row "predict --file: 300 names of 1,000 letters (ONNX Runtime)" "stdout lines: $(grep -c . "$w/out")"
c predict --file long.txt -k 1 --backend torch; row "same, --backend torch" "stdout lines: $(grep -c . "$w/out")"

# 4. A one-million-column header over 200 one-cell rows (8 MB).
$PY -c "import sys; sys.stdout.write(','.join(f'c{i}' for i in range(1_000_000)) + ',name\n' + 'Smith\n' * 200)" > wide.csv
c predict --csv wide.csv --column c0 -k 1 --out wide_out.csv; row "predict --csv: 10^6-column header, 200 one-cell rows" \
  "output $(stat -c %s wide_out.csv 2>/dev/null || echo 0) bytes"

# 5. Forged and odd model ids.
c predict Jones --json --checkpoint swapped.onnx; row "predict --checkpoint swapped.onnx (labels swapped, source kept)" \
  "stdout: $(grep -o '"label": "[A-Za-z]*"' "$w/out" | head -n 1), $(grep -o '"model": "[^"]*"' "$w/out")"
c predict Jones --json --checkpoint odd_id.onnx; row "predict --checkpoint odd_id.onnx (source: ESC and a newline)" \
  "stdout: $(grep -o '"model": "[^"]*"' "$w/out")"
cp "$PT" m.pt; cp swapped.onnx m.onnx
c predict Jones --json --checkpoint m.pt; row "predict --checkpoint m.pt, a forged m.onnx beside it" \
  "stdout: $(grep -o '"label": "[A-Za-z]*"' "$w/out" | head -n 1), $(grep -o '"model": "[^"]*"' "$w/out")"

# 6. train --out m.onnx.
mkdir -p ds; printf 'Smith\nJones\nTaylor\nBrown\nWilliams\nWilson\nJohnson\nDavies\n' > ds/English.txt
printf 'Rossi\nRusso\nFerrari\nEsposito\nBianchi\nRomano\nColombo\nRicci\n' > ds/Italian.txt
printf 'Sato\nSuzuki\nTakahashi\nTanaka\nWatanabe\nIto\nYamamoto\nNakamura\n' > ds/Japanese.txt
mkdir -p t6; c train --data ds --epochs 1 --hidden-size 8 --no-progress --out t6/m.onnx
row "train --out t6/m.onnx" "t6 holds: $(ls t6 | tr '\n' ' '); info: $($CHARCLF info --checkpoint t6/m.onnx 2>&1 | tail -n 1 | cut -c1-60)"

# 7. Labels that cannot name a class.
cp -r ds ds7; mv ds7/Italian.txt "ds7/Ital$(printf '\xc2\xad')ian.txt"
c train --data ds7 --epochs 1 --hidden-size 8 --no-progress --out t7.pt; row "train: a soft hyphen in a file name" "files: $(ls t7* 2>/dev/null | tr '\n' ' ')"
{ echo name,label; for f in ds/*.txt; do l=$(basename "$f" .txt); [ "$l" = Italian ] && l=$(printf 'Ital\xe2\x80\x8bian')
  for i in a b c d e f g h; do sed "s/\$/$i,$l/" "$f"; done; done; } > zw.csv  # 192 rows; Italian with a zero-width space
c train --data zw.csv --epochs 1 --hidden-size 8 --no-progress --out t7b.pt; row "train: a zero-width space in a CSV label" "files: $(ls t7b* 2>/dev/null | tr '\n' ' ')"

# 8. A training table without line ends (200 MB).
$PY -c "import sys; sys.stdout.write('name,label,' + 'Smith,English,' * 15_000_000)" > flat.csv
c train --data flat.csv --epochs 1 --no-progress --out t8.pt; row "train --data: 200 MB CSV without line ends"
c evaluate --data flat.csv; row "evaluate --data: the same"

# 10. Tampered model cards.
for f in card sizes; do
  for cmd in info "predict Jones"; do
    c $cmd --checkpoint $f.pt; row "$cmd --checkpoint $f.pt" "stdout: $(head -c 60 "$w/out" | tr '\n' ' ')"
  done
  run timeout 20 $CHARCLF serve --port 18999 --checkpoint $f.pt  # a server that starts is stopped after 20 s (124)
  row "serve --checkpoint $f.pt" "stdout: $(head -c 60 "$w/out" | tr '\n' ' ')"
done

# 27. predict_dataframe with integer column labels.
py "import io, pandas as pd, charclf
print(charclf.predict_dataframe(pd.read_csv(io.StringIO('Jones,1\nRossi,2\n'), header=None), 0, k=1)['label'].tolist())"
row "predict_dataframe(read_csv(header=None), 0)" "stdout: $(head -c 60 "$w/out")"

# 29. SIGTERM during predict --csv - --out (stdin held open after 10,000 rows).
echo "an earlier table" > out29.csv
mkfifo in29; ( $PY -c "print('id,name'); [print(f'{i},Smith') for i in range(10000)]"; sleep 60 ) > in29 &
feeder=$!
$CHARCLF predict --csv - --column name --out out29.csv < in29 >"$w/out" 2>"$w/err" & pid=$!
for _ in $(seq 1 100); do ls .out29.csv.*.tmp >/dev/null 2>&1 && break; sleep 0.2; done
kill -TERM $pid; wait $pid; rc=$?; kill $feeder 2>/dev/null; echo 0 > "$w/mem"
row "SIGTERM during predict --csv - --out out29.csv" "temp files left: $(ls -a | grep -c '^\.out29.csv.*\.tmp$'); out29.csv: $(head -c 20 out29.csv)"
