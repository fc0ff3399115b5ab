#!/usr/bin/env bash
# The GPU check: everything charclf does on CUDA, in one run of at most 8 minutes.
#
#   bash scripts/gpu_check.sh          # CHARCLF_DATA: the names dataset (default ./data/names)
#
# Without a CUDA GPU it says so in one line and exits 0 (CI runs that path). With one, it
#  1. runs the tests marked `cuda`, then the model, training and predict tests, whose default
#     device (auto) is then the GPU;
#  2. trains the default model (2 epochs) with --device cuda and with --device auto, predicts with
#     it on the GPU and on the CPU and checks the answers agree within 1e-4, and loads the
#     GPU-saved checkpoint in a process that sees no GPU;
#  3. trains 4 epochs under `torchrun --nproc_per_node 1` (nccl), kills it in epoch 2, resumes, and checks
#     the resumed run finishes with a model that predicts;
#  4. times training and batch prediction for each backbone in float32 and bfloat16 autocast
#     (python scripts/benchmark.py gpu) and prints one table naming the GPU.
# It goes on after a failed step and ends with a summary line; the exit status is the number of
# failed steps. With $OUT set, everything printed also goes to $OUT/gpu_check.log (and the table to
# $OUT/gpu_table.md). PYTHON picks the interpreter (default: ./.venv/bin/python, else python3);
# charclf is imported from this checkout. GPU_CHECK_DEVICE=cpu rehearses every step on the CPU
# (gloo for nccl, the benchmark's --quick): a check of this script, not of CUDA.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  exec > >(tee "$OUT/gpu_check.log") 2>&1
fi
DEV=${GPU_CHECK_DEVICE:-cuda}
if [ "$DEV" = cuda ] && ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no CUDA GPU present (torch.cuda.is_available() is false for $PY): nothing to check"
  exit 0
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CHARCLF_DATA=${CHARCLF_DATA:-$PWD/data/names}
CHARCLF_HOME=$(mktemp -d)
work=$(mktemp -d)
export CHARCLF_HOME
trap 'rm -rf "$work" "$CHARCLF_HOME"' EXIT
started=$SECONDS
failed=()
step() {  # step NAME SECONDS COMMAND...: run it under a time limit, record a failure, go on
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(( SECONDS - started )) s in)"
  if ! timeout "$limit" "$@"; then
    echo "== FAILED: $name"
    failed+=("$name")
  fi
}
charclf=("$PY" -m charclf)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
"$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU: rehearsal on the CPU')"
[ -d "$CHARCLF_DATA" ] || { echo "gpu_check: no dataset at $CHARCLF_DATA (set CHARCLF_DATA)"; exit 1; }

# 1. Tests. The fast suite's device-dependent files run with the GPU as their `auto` device.
# shellcheck disable=SC2046  # one word per test file
step "tests marked cuda" 120 "$PY" -m pytest -q -m cuda -p no:cacheprovider $(grep -l "mark.cuda" tests/test_*.py)
step "model, training and predict tests on the GPU" 180 "$PY" -m pytest -q -p no:cacheprovider \
  tests/test_model.py tests/test_tasks.py tests/test_checkpoint.py tests/test_runner.py tests/test_averaging.py \
  tests/test_precision.py tests/test_cli.py

# 2. Train on the GPU; the same answers on the GPU and the CPU; the checkpoint loads without a GPU.
quick=(--epochs 2 --no-refit --threads 2)
step "train --device $DEV" 120 "${charclf[@]}" train "${quick[@]}" --device "$DEV" --out "$work/cuda.pt"
step "train --device auto" 120 "${charclf[@]}" train "${quick[@]}" --device auto --out "$work/auto.pt"
step "GPU and CPU answers agree" 60 "$PY" - "$DEV" "$work/cuda.pt" "$work/auto.pt" <<'EOF'
import sys

import numpy as np
import charclf

names = ["Jones", "Rossi", "Nakamura", "Schmidt", "Oneill", "Dvorak", "Nguyen", "Abdullah", "Xi", "Papadopoulos"]
for path in sys.argv[2:]:
    gpu = charclf.load(path, backend="torch", device=sys.argv[1]).probabilities(names)
    cpu = charclf.load(path, backend="torch", device="cpu").probabilities(names)
    gap = float(np.abs(np.asarray(gpu) - np.asarray(cpu)).max())
    print(f"{path}: largest probability gap, GPU against CPU: {gap:.2e}")
    assert gap <= 1e-4, gap
EOF
step "GPU checkpoint loads where no GPU is seen" 60 env CUDA_VISIBLE_DEVICES= "$PY" -c "
import sys, torch, charclf
assert not torch.cuda.is_available()
print(charclf.load(sys.argv[1], backend='torch', device='auto').predict(['Jones'], k=1)[0].top)" "$work/cuda.pt"

# 3. torchrun with nccl: kill mid-epoch, resume, finish.
ddp=(-m torch.distributed.run --standalone --nproc_per_node 1 -m charclf train --device "$DEV" --epochs 4 --no-refit
     --out "$work/ddp.pt")
echo "== torchrun (nccl): start, kill mid-epoch, resume ($(( SECONDS - started )) s in)"
timeout 120 "$PY" "${ddp[@]}" > "$work/ddp.log" 2>&1 &
run=$!
for _ in $(seq 120); do [ -f "$work/ddp.state.pt" ] && break; sleep 1; done  # epoch 1 done
sleep 1 && kill -TERM "$run" 2>/dev/null
wait "$run"
grep -E "nccl|epoch" "$work/ddp.log" | head -5
if [ ! -f "$work/ddp.state.pt" ]; then
  echo "== FAILED: torchrun wrote no .state.pt within 120 s"; failed+=("torchrun start"); tail -5 "$work/ddp.log"
else
  step "torchrun --resume" 150 "$PY" "${ddp[@]}" --resume
  step "the resumed model predicts" 60 "${charclf[@]}" predict --checkpoint "$work/ddp.pt" --backend torch Jones
fi

# 4. Timings: each backbone, float32 and bfloat16 autocast, one table naming the GPU.
table=${OUT:+$OUT/gpu_table.md}
speed=(--names 200000)
[ "$DEV" = cuda ] || speed=(--quick)
step "benchmark gpu" 300 "$PY" scripts/benchmark.py gpu --device "$DEV" "${speed[@]}" ${table:+--markdown "$table"}

echo "== done in $(( SECONDS - started )) s; failed steps: ${#failed[@]}${failed:+ (${failed[*]})}"
exit "${#failed[@]}"
