#!/usr/bin/env bash
# The GPU benchmark from a fresh clone on a CUDA machine, in at most 8 minutes:
#
#     benchmarks/gpu.sh             # makes .venv-gpu, installs the project (torch 2.13.0 from PyPI:
#                                   # its Linux wheels are CUDA builds), runs benchmarks/gpu_speed.py
#     benchmarks/gpu.sh --dry-run   # the same steps on the CPU, fp32, a few images, with the
#                                   # Python in $PYTHON (default .venv/bin/python): no install
#
# Needs the bench data beside the clone (../shared/bench: data/screens, data/real, score.py) and
# PyPI. Prints images/s for batch sizes 1/8/32 in fp32, fp16 and bf16, each one's accuracy against
# the CPU path (within 0.5 points, or the exit code is 1), the peak GPU memory, and the same for a
# 20-page scanned PDF. Exit 2: no CUDA device, or the install failed. Extra arguments go to
# gpu_speed.py (e.g. --limit 40).
set -euo pipefail

LIMIT_SECONDS=480  # the whole run, install included
MARGIN_SECONDS=30  # kept back for start-up and the final table
start=$(date +%s)
cd "$(dirname "$0")/.."

fail() {
    echo "gpu.sh: $*" >&2
    exit 2
}

if [[ "${1:-}" == "--dry-run" ]]; then
    shift
    python=${PYTHON:-.venv/bin/python}
    [[ -x "$python" ]] || fail "no Python at $python (set PYTHON to a venv with the project installed)"
    PYTHONPATH=. exec "$python" benchmarks/gpu_speed.py --device cpu --dtypes fp32 --batches 1,2 \
        --limit 2 --pages 2 --budget 600 "$@"
fi

command -v nvidia-smi >/dev/null || fail "no nvidia-smi: this is not a CUDA machine (try --dry-run)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || fail "nvidia-smi sees no GPU"

venv=${VENV:-.venv-gpu}
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" || fail "cannot make a virtual environment in $venv (python3-venv missing?)"
fi
"$venv/bin/python" -m pip install -q --upgrade pip || fail "pip cannot upgrade itself (no PyPI?)"
# pyproject pins torch==2.13.0; PyPI's default index serves its CUDA build on Linux
"$venv/bin/python" -m pip install -q -e . || fail "installing the project failed"
"$venv/bin/python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || fail "torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') sees no CUDA device"

left=$((LIMIT_SECONDS - ($(date +%s) - start) - MARGIN_SECONDS))
((left > 60)) || fail "the install took $(($(date +%s) - start)) s: no time is left for the benchmark"
echo "gpu.sh: installed in $(($(date +%s) - start)) s; the benchmark gets ${left} s"
PYTHONPATH=. exec timeout $((left + MARGIN_SECONDS / 2)) "$venv/bin/python" benchmarks/gpu_speed.py \
    --device cuda --budget "$left" "$@"
