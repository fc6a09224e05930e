#!/usr/bin/env bash
# The CPU stand-in for a GPU runner: the notebooks under nbval, from scratch, under other arithmetic than the one
# their outputs were recorded with (AVX-512 kernels instead of AVX2 where the CPU has them, else the library
# defaults), in a scratch run folder. It runs both tiers on the same scratch run:
#   1. the exact tier (sanitize.cfg): passes when other CPU arithmetic changes no printed 0.1 pp digit;
#   2. the device tier (WISEFT_DEVICE left at cpu, sanitize_device.cfg): what a GPU runner checks, the CHECK
#      cells' claims and numbers within 0.5 pp; it must pass even where (1) finds a last-digit difference.
# A full mini pipeline: about 10 minutes on 2 cores, then about 4 more for the second pass.
#
#   bash scripts/nbval_other_arithmetic.sh            # AVX-512 if /proc/cpuinfo lists avx512f, else defaults
#   ISA=default bash scripts/nbval_other_arithmetic.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/scripts/bootstrap.sh"

ISA="${ISA:-$(grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo avx512 || echo default)}"
if [ "$ISA" = avx512 ]; then
  export ATEN_CPU_CAPABILITY=avx512 MKL_ENABLE_INSTRUCTIONS=AVX512 ONEDNN_MAX_CPU_ISA=AVX512_CORE
else  # the libraries choose for themselves: whatever this CPU does best
  unset ATEN_CPU_CAPABILITY MKL_ENABLE_INSTRUCTIONS ONEDNN_MAX_CPU_ISA
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-2}" PYTHONHASHSEED=0
export WISEFT_PROGRESS=0
WISEFT_RUNS="$(mktemp -d)"
export WISEFT_RUNS
trap 'rm -rf "$WISEFT_RUNS"' EXIT
echo "arithmetic: ${ISA}; scratch runs: ${WISEFT_RUNS}"

status=0
python -m pytest -p no:xdist --nbval-lax --nbval-sanitize-with tests/notebooks/sanitize.cfg notebooks || status=$?
echo "exact tier under ${ISA} arithmetic: exit ${status}"
# the device tier on the run just made (02-05 read back or rewrite their rows; the figures are drawn again)
python -m pytest -p no:xdist --nbval-lax --nbval-sanitize-with tests/notebooks/sanitize_device.cfg notebooks
echo "device tier under ${ISA} arithmetic: passed"
exit "$status"
