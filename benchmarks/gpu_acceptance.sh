#!/usr/bin/env bash
# One command: the acceptance of ddr's CUDA path on one GPU (H100/H200), a report always written.
#   bash benchmarks/gpu_acceptance.sh --out benchmarks/results/gpu-acceptance     # GPU mode
#   bash benchmarks/gpu_acceptance.sh --device cpu --budget 300 --no-venv --out DIR   # CPU mode
# benchmarks/gpu_acceptance.py does the work (--help lists every option); it needs only the Python
# standard library itself and runs under $PYTHON (default python3). Exit: 0 ok, 1 a step failed, 2 bad input.
# Relative paths in the options are taken from the current folder; the steps run in the checkout's root.
set -euo pipefail
exec "${PYTHON:-python3}" -u "$(dirname "$0")/gpu_acceptance.py" "$@"
