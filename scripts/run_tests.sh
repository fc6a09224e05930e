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
# The notebooks, in pipeline order (notebooks/conftest.py), each against its recorded outputs; they read and
# write runs/mini (WISEFT_RUNS=<folder> runs them from scratch elsewhere). WISEFT_DEVICE=cuda runs them on a GPU.
if [ -d notebooks ] && ls notebooks/*.ipynb >/dev/null 2>&1; then
  python -m pytest -p no:xdist --nbval-lax --nbval-sanitize-with tests/notebooks/sanitize.cfg \
    notebooks
fi
