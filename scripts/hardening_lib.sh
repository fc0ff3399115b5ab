# What the hardening case scripts share (sourced by scripts/hardening_io_cases.sh and
# scripts/hardening_cache_cases.sh, with their own arguments): one thread, a private charclf home,
# the work folder ($1, else a new one) as the current folder, and the helpers that run a case
# under limits and print it as a Markdown table row. LIMIT_S and LIMIT_KB set the limits
# (default 120 s and 4 GB of address space).
set -u
export OMP_NUM_THREADS=1 CHARCLF_THREADS=1 CHARCLF_HOME=${CHARCLF_HOME:-$(mktemp -d)}
CHARCLF=${CHARCLF:-charclf}
root=$PWD
w=${1:-$(mktemp -d)}; mkdir -p "$w"; cd "$w" || exit 1
PY=$(command -v python)

row() {  # row CASE NOTE: the last command's results (rc, $w/err, $w/mem) as a table row
  local msg mem secs; msg=$(tr '\r' '\n' < "$w/err" | grep -v '^\s*$' | tail -n 1 | cut -c1-200)
  grep -q Traceback "$w/err" && msg="traceback: $msg"
  read -r mem secs < <(tail -n 1 "$w/mem" 2>/dev/null); [[ $mem =~ ^[0-9]+$ ]] || mem=0
  printf '| %s | exit %s, %s MB, %s s: %s%s |\n' "$1" "$rc" "$(( mem / 1024 ))" "${secs:-?}" "${msg//|/\\|}" "${2:+; $2}"
}
run() {  # run CMD...: under the limits, peak RSS to $w/mem, stdout to $w/out, stderr to $w/err
  (ulimit -v "${LIMIT_KB:-4000000}"; /usr/bin/time -o "$w/mem" -f "%M %e" timeout "${LIMIT_S:-120}" "$@" >"$w/out" 2>"$w/err"); rc=$?
}
c() { run $CHARCLF "$@"; }
