#!/usr/bin/env bash
# Every hostile file and careless path of docs/hardening.md, through the real CLI: one Markdown
# table row per case (exit code, peak memory, the last line on stderr, what happened to files).
# Usage, from the project root: PATH=$PWD/.venv/bin:$PATH bash scripts/hardening_cases.sh [WORKDIR]
# Needs root for the device node and the small tmpfs (those rows are skipped otherwise). Nothing
# outside WORKDIR is written: /dev/null itself is never named as --out (an older charclf replaces it
# with a regular file); a device node made in WORKDIR (mknod c 1 3) stands in for it.
set -u
export OMP_NUM_THREADS=1 CHARCLF_HOME=${CHARCLF_HOME:-$(mktemp -d)}
w=${1:-$(mktemp -d)}; mkdir -p "$w"; cd "$w" || exit 1
PY=$(command -v python)
SMALL=(--epochs 1 --hidden-size 8 --no-progress)

row() {  # row CASE NOTE: the last command's results (rc, $w/err, $w/mem) as a table row
  local msg mem; msg=$(tr '\r' '\n' < "$w/err" | grep -v '^\s*$' | tail -n 1 | cut -c1-220)
  grep -q Traceback "$w/err" && msg="traceback: $msg"
  mem=$(tail -n 1 "$w/mem" 2>/dev/null); [[ $mem =~ ^[0-9]+$ ]] || mem=0
  printf '| %s | %s | %s MB | %s | %s |\n' "$1" "$rc" "$(( mem / 1024 ))" \
    "${msg//|/\\|}" "${2:-}"
}
run() {  # run CMD...: timeout 120 s, peak RSS to $w/mem, stdout to $w/out, stderr to $w/err
  /usr/bin/time -o "$w/mem" -f %M timeout 120 "$@" >"$w/out" 2>"$w/err"; rc=$?
}

mkdir -p ds; printf 'Smith\nJones\nTaylor\nBrown\nWilliams\nWilson\nJohnson\nDavies\n' > ds/English.txt
printf 'Rossi\nRusso\nFerrari\nEsposito\nBianchi\nRomano\nColombo\nRicci\n' > ds/Italian.txt
printf 'Sato\nSuzuki\nTakahashi\nTanaka\nWatanabe\nIto\nYamamoto\nNakamura\n' > ds/Japanese.txt
charclf train --data ds "${SMALL[@]}" --out m.pt >/dev/null 2>&1 || { echo "training failed"; exit 1; }
PYTHONPATH=$OLDPWD/tests $PY - <<'PY'
from pathlib import Path
import math, os, torch, hostile
g = Path("m.pt")
def cfg(**kw): return lambda p: p["model_config"].update(kw)
def weights(value):
    def change(p):
        k = next(iter(p["model"])); p["model"][k] = torch.full_like(p["model"][k], value)
    return change
for name, change in {
    "layers": cfg(num_layers=10**6), "hidden": cfg(hidden_size=10**7), "float_hidden": cfg(hidden_size=2.5),
    "nan": weights(math.nan), "inf": weights(math.inf),
    "cold": lambda p: p.update(calibration={"temperature": 1e-300}),
    "odd_labels": lambda p: p.update(labels=[1, None, {"a": 1}]),
    "dup_labels": lambda p: p.update(labels=["English", "English", "Italian"]),
    "one_letter": lambda p: p.update(alphabet="a" * len(p["alphabet"])),
}.items():
    hostile.mutated(g, Path(f"{name}.pt"), change)
hostile.zip_bomb(g, Path("bomb.pt"))
hostile.sparse_weights(g, Path("sparse.pt"))
hostile.raw_pickle(g, Path("raw.pt"))
hostile.png(Path("plot.png"))
hostile.code_running_pickle(Path("evil.pt"), Path("pwned"))
Path("text.pt").write_text("Smith\nJones\n")
Path("trunc.pt").write_bytes(g.read_bytes()[:2000])
with open("zeros.pt", "wb") as f:
    f.truncate(2 * 10**9)  # 2 GB of zeros (sparse)
PY
mkfifo fifo.pt
echo '| case | exit | peak memory | last line on stderr | notes |'
echo '|---|---|---|---|---|'

for f in bomb layers hidden float_hidden nan inf cold odd_labels dup_labels one_letter sparse raw evil text trunc zeros; do
  run charclf predict Jones --json --checkpoint "$f.pt"; row "predict --checkpoint $f.pt" "stdout: $(head -c 150 "$w/out" | tr '\n' ' ')"
done
run charclf predict Jones --checkpoint plot.png; row "predict --checkpoint plot.png (a PNG)"
run charclf predict Jones --checkpoint /dev/zero; row "predict --checkpoint /dev/zero"
run charclf predict Jones --checkpoint fifo.pt; row "predict --checkpoint FIFO"
run charclf predict Jones --min-confidence 0.5 --checkpoint nan.pt; row "NaN weights, --min-confidence 0.5" "stdout: $(head -c 120 "$w/out")"
run charclf evaluate --data ds --checkpoint nan.pt; row "evaluate NaN weights" "stdout: $(head -n 2 "$w/out" | tail -n 1)"

# Output paths.
cp -r ds ds2
run charclf train --data ds2 "${SMALL[@]}" --out ds2/English.txt
row "train --out ds2/English.txt (a label file)" "English.txt now: $(head -c 20 ds2/English.txt | tr -c '[:print:]' '?')"
echo "my notes" > notes.txt
run charclf train --data ds "${SMALL[@]}" --out notes.txt; row "train --out notes.txt (not a checkpoint)" "notes.txt: $(head -c 12 notes.txt | tr -c '[:print:]' '?')"
run charclf train --data ds "${SMALL[@]}" --out notes.txt --force; row "same with --force" "notes.txt now $(stat -c %s notes.txt) bytes"
mkfifo outfifo
run charclf train --data ds "${SMALL[@]}" --out outfifo; row "train --out FIFO" "outfifo is now: $(stat -c %F outfifo)"
if mknod nulldev c 1 3 2>/dev/null; then
  run charclf train --data ds "${SMALL[@]}" --out nulldev; row "train --out a null device node (mknod c 1 3)" "nulldev is now: $(stat -c %F nulldev); side files: $(ls nulldev.* 2>/dev/null | tr '\n' ' ')"
fi
ln -s /dev/full fulllink
run charclf train --data ds "${SMALL[@]}" --out fulllink; row "train --out symlink to /dev/full" "fulllink is now: $(stat -c %F fulllink)"
mkdir outdir; run charclf train --data ds "${SMALL[@]}" --out outdir; row "train --out a folder"

# Names and input.
$PY -c "print('x' * 1_000_000)" > long1m.txt; $PY -c "print('x' * 3_000_000)" > long3m.txt
run charclf predict --checkpoint m.pt --file long1m.txt; row "predict a 1M-character line"
run charclf predict --checkpoint m.pt --file long3m.txt; row "predict a 3M-character line"
run bash -c 'charclf predict --checkpoint m.pt - <&-'; row "predict - with stdin closed"
run charclf predict Jones --min-confidence nan --checkpoint m.pt; row "--min-confidence nan" "stdout: $(head -c 60 "$w/out")"
printf 'name,label\nSmith,English\n"Rossi,Italian\nSato,Japanese\nJones,English\n' > quote.csv
run charclf train --data quote.csv "${SMALL[@]}" --out q.pt; row "CSV with an unterminated quote on line 3 (of 5)"

# Training options and places.
for opt in "--lr nan" "--lr inf" "--epochs 0" "--epochs 1000000000000" "--batch-size 1000000000" \
           "--hidden-size 10000000" "--num-layers 1000000" "--seed 1180591620717411303424" "--min-confidence 2"; do
  [ "$opt" = "--min-confidence 2" ] && continue
  run charclf train --data ds --no-progress --hidden-size 8 --epochs 1 $opt --out opt.pt; row "train $opt"
done
run env CHARCLF_DATA=$w/nothing charclf train "${SMALL[@]}" --out d.pt; row "CHARCLF_DATA pointing at nothing"
run env CHARCLF_HOME=/proc/nope charclf train --data ds "${SMALL[@]}"; row "CHARCLF_HOME unwritable (/proc/nope)"
if mkdir -p full && mount -t tmpfs -o size=300k tmpfs full 2>/dev/null; then
  run charclf train --data ds --epochs 1 --hidden-size 256 --no-progress --out full/m.pt; row "train onto a full 300 KB tmpfs" "left in full/: $(ls -A full | tr '\n' ' ')"
  umount full
fi
(charclf train --data ds --epochs 40 --hidden-size 64 --no-progress --out same.pt >a.out 2>a.err; echo $? > a.rc) &
sleep 0.3; run charclf train --data ds --epochs 40 --hidden-size 64 --no-progress --out same.pt; wait
row "two trainings of the same --out at once (the second)" "first: exit $(cat a.rc), $(grep -c Traceback a.err) traceback(s), $(tail -n 1 a.err | cut -c1-100)"
run charclf predict Jones --checkpoint same.pt; row "predict with that checkpoint afterwards"

# Resuming.
charclf train --data ds "${SMALL[@]}" --out r.pt >/dev/null 2>&1; cp evil.pt r.state.pt
run charclf train --data ds --out r.pt --resume --no-progress; row "train --resume with a code-running state file"
real=${CHARCLF_DATA:-ds}  # epochs of a few seconds: the signal lands mid-epoch
# A job started with & by a script inherits SIGINT ignored (as every program does): undo that, as a terminal's Ctrl-C would find it.
$PY -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
  charclf train --data "$real" --epochs 3 --hidden-size 16 --no-progress --out s.pt >s.out 2>s.err & pid=$!
for i in $(seq 1 1200); do [ -s s.state.pt ] && break; sleep 0.1; done; sleep 0.5
kill -INT $pid; wait $pid; rc=$?; cp s.err "$w/err"; : > "$w/mem"; row "SIGINT to the process mid-epoch"
run charclf train --data "$real" --out s.pt --resume --no-progress
row "then train --resume" "$(grep -o 'resuming at epoch [0-9]*' "$w/err"); state file left: $(ls s.state.pt 2>/dev/null | wc -l)"

# data fetch from local files.
mkdir -p z/data/names; cp ds/*.txt z/data/names/
(cd z && $PY -c "import zipfile,glob; z=zipfile.ZipFile('good.zip','w'); [z.write(f) for f in glob.glob('data/names/*')]; z.close()
z=zipfile.ZipFile('evil.zip','w'); [z.write(f) for f in glob.glob('data/names/*')]; z.writestr('data/names/../../../evil.txt','x'); z.writestr('../evil.txt','x'); z.close()")
(cd z && sha256sum data/names/*.txt | sed 's#data/names/##' > right.sha256 && sed 's/^./0/' right.sha256 > wrong.sha256)
run charclf data fetch --dest f1 --url "file://$w/z/good.zip" --manifest z/wrong.sha256; row "data fetch, wrong checksum" "f1: $(ls f1 2>&1 | head -c 40)"
run charclf data fetch --dest f2 --url "file://$w/z/evil.zip" --manifest z/right.sha256; row "data fetch, zip with ../evil.txt entries" "evil.txt written: $(ls "$w"/evil.txt "$w"/../evil.txt 2>/dev/null | wc -l)"
truncate -s 3G z/huge.zip
run charclf data fetch --dest f3 --url "file://$w/z/huge.zip" --manifest z/right.sha256; row "data fetch, a 3 GB download" "left beside f3: $(ls -A | grep -c fetch)"
