#!/usr/bin/env bash
# The whole test suite: set up .venv, run the unit/integration/reliability tests (two workers), then
# execute the committed notebooks with nbval against their recorded `mini` outputs.
# Extra arguments go to the first pytest run (for example -k profile).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/scripts/bootstrap.sh"

# Same arithmetic on every x86 machine: the committed notebook outputs were recorded with these settings.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}"
export ATEN_CPU_CAPABILITY="${ATEN_CPU_CAPABILITY:-avx2}" MKL_ENABLE_INSTRUCTIONS="${MKL_ENABLE_INSTRUCTIONS:-AVX2}"
export ONEDNN_MAX_CPU_ISA="${ONEDNN_MAX_CPU_ISA:-AVX2}"
export WISEFT_PROGRESS=0 PYTHONHASHSEED=0

python -m pytest tests -n 2 --dist loadfile "$@"
if [ -d notebooks ] && ls notebooks/*.ipynb >/dev/null 2>&1; then
  python -m pytest -p no:xdist --nbval-lax --nbval-sanitize-with tests/notebooks/sanitize.cfg notebooks
fi
