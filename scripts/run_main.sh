#!/usr/bin/env bash
# The main job: set up .venv, then run the paper pipeline on the embedded offline profile `mini`.
# Executed notebooks, figures, results.jsonl and report.md land in runs/mini/.
# Extra arguments go to `wiseft run` (for example --force, or --set finetune.e2e.epochs=2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/numerics_env.sh"  # the arithmetic the committed notebook outputs were recorded with
exec wiseft run --profile mini "$@"
