#!/usr/bin/env bash
# Install charclf (editable, with training (torch and ONNX export), plotting, serving, Japanese readings, the
# public surname lists (names) and the test extra) into a virtual environment: ./.venv or $VENV.
# torch comes first and only when the environment has none, so an existing build (CUDA
# included) is kept; TORCH_SPEC says which to install (default: torch==2.13.0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  # shellcheck disable=SC2086  # TORCH_SPEC may carry pip options, e.g. an --index-url
  "$VENV/bin/python" -m pip install -q ${TORCH_SPEC:-torch==2.13.0}
fi
"$VENV/bin/python" -m pip install -q -e ".[train,plot,serve,japanese,names,pandas,spark,dask,test]"  # pandas, spark, dask: predict_dataframe's and the engines' tests; names: the extra training names' tests
