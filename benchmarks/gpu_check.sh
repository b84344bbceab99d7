#!/usr/bin/env bash
# GPU check (issue #15): on a machine with a CUDA GPU, run the folder scan (fp32, channels_last,
# bf16 autocast), unit projections, occlusion and Grad-CAM once on the GPU and print their
# throughput and their agreement with the CPU; then a 2-process torchrun scan (NCCL) on the same
# kind of folder. Never needed for the tests; takes a few minutes.
#
#   benchmarks/gpu_check.sh [--images 2048] [--model mobilenet_v2]    (extra arguments go to gpu_check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check: no CUDA GPU visible to torch; nothing to check")'

"$PY" benchmarks/gpu_check.py --device cuda "$@"

# torchrun: one rank per GPU (NCCL); with a single GPU, one rank (the command is the same).
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PY" - "$TMP/data" <<'PYEOF'
import sys
sys.path.insert(0, "benchmarks")
from pathlib import Path
from bench_folder_scan import write_images
write_images(Path(sys.argv[1]), 1024, (500, 375))
PYEOF
TORCHRUN="$(dirname "$PY")/torchrun"
[ -x "$TORCHRUN" ] || TORCHRUN=torchrun
"$TORCHRUN" --standalone --nproc-per-node "$GPUS" -m zfhelpers scan --data "$TMP/data" --model twin_zf \
    --layers relu1 relu3 relu5 --k 9 --batch-size 128 --device cuda --out "$TMP/result.json" --no-checkpoint --quiet
