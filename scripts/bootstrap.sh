#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install wiseft into it.
# Sourced by scripts/run_main.sh and scripts/run_tests.sh; safe to run on its own.
# Needs only python3 (3.10+) with pip and venv. Reinstalls only when pyproject.toml changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WISEFT_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
EXTRAS="${WISEFT_EXTRAS:-test,wilds}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "wiseft: creating virtual environment $VENV" >&2
  "$PYTHON_BIN" -m venv "$VENV"
fi

STAMP="$VENV/.wiseft-install"
WANT="$( (cat "$ROOT/pyproject.toml"; echo "$EXTRAS") | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "wiseft: installing wiseft[$EXTRAS] into $VENV (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # setuptools tells every editable install of a flat layout to beware of same-named folders in the working
  # directory; that notice is about this very checkout, so it is filtered (that message only, nothing else).
  PYTHONWARNINGS="ignore:Editable installation:UserWarning" \
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$EXTRAS]"
  # The notebooks run on a kernel of this environment, whatever kernels the user has elsewhere.
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (wiseft)" >/dev/null
  # JupyterLab provisions CurveZMQ keys for its kernels too (the pipeline's and nbval's do: wiseft.pipeline.kernels).
  mkdir -p "$VENV/etc/jupyter/jupyter_server_config.d"
  echo '{"KernelManager": {"transport_encryption": "auto"}}' > "$VENV/etc/jupyter/jupyter_server_config.d/wiseft-kernels.json"
  echo "$WANT" > "$STAMP"
fi

export PATH="$VENV/bin:$PATH"
# Keep caches inside the checkout unless the user chose a place: the offline world and its model live here.
export WISEFT_CACHE="${WISEFT_CACHE:-$ROOT/.cache/wiseft}"
export MPLBACKEND="${MPLBACKEND:-Agg}"
