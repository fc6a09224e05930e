#!/usr/bin/env bash
# Record the outputs of the committed notebooks: execute every notebook under notebooks/ in place, in pipeline
# order, exactly as nbval will (parameters-cell defaults: the `mini` profile, run folder runs/mini, CPU), and
# write the outputs back. Then commit notebooks/. nbval (scripts/run_tests.sh) checks the cells marked
# `# NBVAL_CHECK_OUTPUT` against these outputs.
#
#   bash scripts/record_notebooks.sh                       # every notebook (the whole mini pipeline, ≈10–15 min)
#   bash scripts/record_notebooks.sh --only fig1 table1    # some notebooks (their inputs must be in runs/mini)
#   WISEFT_RUNS=$(mktemp -d) bash scripts/record_notebooks.sh   # from scratch, leaving runs/ alone
#
# Notebooks reuse what runs/mini already holds (checkpoints, results): for a recording that matches a clean
# clone, record from scratch (the last form) or delete runs/mini first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/numerics_env.sh"
export WISEFT_PROGRESS=0  # no progress bars in recorded or checked outputs
python -m wiseft.pipeline.notebooks record "$@"
python -m wiseft.pipeline.notebooks check
