#!/usr/bin/env bash
# The whole test suite: set up .venv, run the unit/integration/reliability tests (two workers), then
# execute the committed notebooks with nbval against their recorded `mini` outputs.
# Extra arguments go to the first pytest run (for example -k profile).
# On a GPU runner: WISEFT_DEVICE=cuda bash scripts/run_tests.sh (the notebooks' device parameter defaults to it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/scripts/bootstrap.sh"

# Same arithmetic on every x86 machine: the committed notebook outputs were recorded with these settings.
source "$ROOT/scripts/numerics_env.sh"
export WISEFT_PROGRESS=0  # no progress bars in recorded or checked outputs

python -m pytest tests -n 2 --dist loadfile "$@"

# The notebooks, in pipeline order (notebooks/conftest.py), each against its recorded `mini` outputs; they read and
# write runs/mini (WISEFT_RUNS=<folder> runs them from scratch elsewhere). Two tiers (docs/notebooks.md):
#  - exact (CPU): the cells marked NBVAL_CHECK_OUTPUT are compared digit for digit (sanitize.cfg);
#  - device (WISEFT_DEVICE=cuda, a GPU runner): numbers are blanked (sanitize_device.cfg), and the CHECK cells of
#    04_interpolate and table1 compare every table number with notebooks/expected/ within 0.5 pp and check the
#    paper's claims exactly.
if [ -d notebooks ] && ls notebooks/*.ipynb >/dev/null 2>&1; then
  DEVICE="${WISEFT_DEVICE:-cpu}"
  SANITIZE=tests/notebooks/sanitize.cfg
  [ "$DEVICE" = cpu ] || SANITIZE=tests/notebooks/sanitize_device.cfg
  python -m pytest -p no:xdist --nbval-lax --nbval-sanitize-with "$SANITIZE" notebooks

  # The README's order runs the notebooks on a run folder that is already complete (run_main.sh, then this
  # script), and every later test run does again. Prove that re-executing the steps on a finished run changes
  # nothing: the notebooks that write results rows, run a second time on the same folder, must still match their
  # recorded outputs, and results.jsonl must come out byte for byte (CPU) with no measurement twice. 02–03 write
  # through the same store and are proved by tests/integration/test_steps.py; 04 (the 1,648-row sweeps: ≈2 min on
  # 2 cores) and 05 (reads its rows back: ≈20 s) are the pair that broke, and are rerun here for real.
  RESULTS="${WISEFT_RUNS:-$ROOT/runs}/mini/results.jsonl"
  SNAPSHOT="$(mktemp)"
  trap 'rm -f "$SNAPSHOT"' EXIT
  cp "$RESULTS" "$SNAPSHOT"
  python -m pytest -p no:xdist --nbval-lax --nbval-sanitize-with "$SANITIZE" \
    notebooks/04_interpolate.ipynb notebooks/05_baselines.ipynb
  python - "$RESULTS" <<'PY'
import sys
from wiseft.results import duplicate_keys
twice = duplicate_keys(sys.argv[1])
if twice:
    sys.exit(f"{sys.argv[1]}: {len(twice)} measurements recorded more than once after the notebooks ran again")
PY
  if [ "$DEVICE" = cpu ] && ! cmp -s "$SNAPSHOT" "$RESULTS"; then
    echo "$RESULTS: changed when 04_interpolate and 05_baselines ran again on the finished run" >&2
    exit 1
  fi
fi
