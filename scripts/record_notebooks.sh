#!/usr/bin/env bash
# Record the outputs of the committed notebooks: execute every notebook under notebooks/ in place, in pipeline
# order, exactly as nbval will (parameters-cell defaults: the `mini` profile, run folder runs/mini, CPU), and
# write the outputs back. Then commit notebooks/. nbval (scripts/run_tests.sh) checks the cells marked
# `# NBVAL_CHECK_OUTPUT` against these outputs. The CHECK cells of 04_interpolate and table1 first write the run's
# key numbers to notebooks/expected/mini-cpu.json (WISEFT_RECORD_EXPECTED=1), the values the device tier compares
# within 0.5 pp; commit that file too.
#
#   bash scripts/record_notebooks.sh                       # every notebook (the whole mini pipeline, ≈10–15 min)
#   bash scripts/record_notebooks.sh --only fig1 table1    # some notebooks (their inputs must be in runs/mini)
#   WISEFT_RUNS=$(mktemp -d) bash scripts/record_notebooks.sh   # from scratch, leaving runs/ alone
#   bash scripts/record_notebooks.sh --device cuda         # on a GPU runner: the GPU tier's expected values only
#
# Notebooks reuse what runs/mini already holds (checkpoints, results): for a recording that matches a clean
# clone, record from scratch (the third form) or delete runs/mini first.
#
# --device DEV runs the mini pipeline on DEV into a scratch folder and writes notebooks/expected/mini-DEV.json from
# it; the committed notebook outputs (the CPU's, the exact tier) are left alone. Commit the JSON file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/numerics_env.sh"
export WISEFT_PROGRESS=0  # no progress bars in recorded or checked outputs

if [ "${1:-}" = "--device" ]; then
  DEVICE="${2:?--device needs a device type, for example cuda}"
  SCRATCH="$(mktemp -d)"
  trap 'rm -rf "$SCRATCH"' EXIT
  wiseft run --profile mini --device "$DEVICE" --out "$SCRATCH/mini"
  python -m wiseft.check record "$SCRATCH/mini" --profile mini --device "$DEVICE"
  python -m wiseft.check run "$SCRATCH/mini" --profile mini --device "$DEVICE"
  exit 0
fi

export WISEFT_RECORD_EXPECTED=1  # the CHECK cells write notebooks/expected/mini-<device>.json before checking
python -m wiseft.pipeline.notebooks record "$@"
python -m wiseft.pipeline.notebooks check
