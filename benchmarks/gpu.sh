#!/usr/bin/env bash
# Benchmark cases 1-4 on one CUDA GPU: ViT-B/16 (random weights) at 224 px in bf16, our side with the GPU path on
# (eval.decode=device: nvjpeg through torchvision.io.decode_jpeg; uint8 chunks on the device or pinned; channels_last;
# fused AdamW). Prints the table, then images/s (prompts/s for the head), achieved TFLOP/s against an 8192² bf16
# matmul measured in the same run, and whether data loading or compute bounds each side; also as Markdown. Writes
# the rows to $OUT/gpu-results.json when $OUT is set, else benchmarks/out/gpu-results.json. About 6 minutes on one
# H200 (limit 8); every case runs the naive approach and ours in the same process.
#   1. linear-classifier α sweep (21 α, 576 JPEGs 375×500, 8 loader workers) vs the official LC workflow
#   2. end-to-end α sweep, ViT-B/16 and ViT-L/14 (same data): decodes counted, decode/forward times, speed-up model
#   3. zero-shot head, 1000 ImageNet classes × 80 templates: achieved TFLOP/s of both sides, work saved
#   4. fine-tuning step throughput of finetune_e2e vs a plain fp32 loop (batch 128), plus amp_bf16 images/s; the
#      bound compares a step with loading its batch of JPEGs through the training transform
#
#   bash benchmarks/gpu.sh               # on the CUDA machine
#   bash benchmarks/gpu.sh --cpu-smoke   # the same script and code paths on the CPU, tiny sizes (under a minute;
#                                        # tests/integration/test_benchmarks.py runs it)
#   Extra arguments go to benchmarks/run.py (e.g. --cases 3,4, --repeats 3). PYTHON picks the interpreter
#   (default python3: on the H200 image that is the one holding torch).
#
# What the H200 image lacks: open_clip_torch, ftfy and wcwidth (torch, torchvision, timm, safetensors, numpy,
# pandas, pyyaml, pillow, psutil, regex, tqdm, huggingface_hub are there). Carry them as wheels in .whl/ at the
# repository root (ignored by git); download them once on this machine with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4
# (wcwidth 0.9.4 is a cp310-abi3 manylinux wheel, the other two are pure Python; 2.3 MB in all), then
#   run(command="bash benchmarks/gpu.sh", carry=[".whl"], timeout_s=540)
# This script installs .whl/*.whl with pip --no-index --no-deps --target into a temporary folder and puts it on
# PYTHONPATH, only when `import open_clip` fails. Alternatively put already-unpacked packages on PYTHONPATH.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

MODE=gpu
if [ "${1:-}" = "--cpu-smoke" ]; then
  MODE=smoke
  shift
fi

if ! "$PY" -c "import open_clip" >/dev/null 2>&1; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    SITE="${WISEFT_SITE:-$(mktemp -d /tmp/wiseft-site.XXXXXX)}"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu.sh: open_clip is not importable and there is no .whl/ folder; see the comment at the top" >&2
    exit 2
  fi
fi

export PYTHONUNBUFFERED=1 WISEFT_PROGRESS=0
OUTDIR="${OUT:-$ROOT/benchmarks/out}"
mkdir -p "$OUTDIR"
if [ "$MODE" = smoke ]; then
  exec "$PY" benchmarks/run.py --gpu --quick --device cpu --json "$OUTDIR/gpu-smoke-results.json" --markdown "$@"
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu.sh: CUDA is not available (use --cpu-smoke)')"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
exec "$PY" benchmarks/run.py --gpu --json "$OUTDIR/gpu-results.json" --markdown "$@"
