#!/usr/bin/env bash
# Fetch every wheel tools/gpu_check.sh needs on a GPU machine that reaches no package index and
# has torch (with Triton and CUDA) but nothing else, into DIR; carry DIR with the clone.
#
#   bash tools/gpu_wheels.sh gpu-wheels                          # Python 3.12, this torch
#   bash tools/gpu_wheels.sh gpu-wheels --python-version 3.11 --torch-version 2.8.0
#
# The requirements are pyproject.toml's dependencies, its bench extra (the benchmark peers) and
# tools/gpu_wheels.txt (tools/gpu_wheels.py roots); pip resolves them with their dependencies
# for linux x86_64 and that Python, against that torch (so torchvision matches it), then
# downloads every resolved wheel except torch's own (torch, triton, nvidia-*, cuda-*).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: bash tools/gpu_wheels.sh DIR [--python-version X.Y] [--torch-version V]}
shift
PYTHON_VERSION=3.12
TORCH_VERSION=$(python3 -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
while [ $# -gt 0 ]; do
  case $1 in
    --python-version) PYTHON_VERSION=$2; shift 2 ;;
    --torch-version) TORCH_VERSION=$2; shift 2 ;;
    *) echo "gpu_wheels.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
TARGET=(--only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform linux_x86_64)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 tools/gpu_wheels.py roots > "$WORK/roots.txt"
if [ -n "$TORCH_VERSION" ]; then echo "torch==$TORCH_VERSION" >> "$WORK/roots.txt"; fi
echo "resolving for Python $PYTHON_VERSION, torch ${TORCH_VERSION:-any}:"
python3 -m pip install --quiet --dry-run --ignore-installed --target "$WORK/site" \
  --report "$WORK/report.json" "${TARGET[@]}" -r "$WORK/roots.txt"
python3 tools/gpu_wheels.py pins "$WORK/report.json" > "$WORK/pins.txt"
mkdir -p "$DIR"
python3 -m pip download --quiet --no-deps "${TARGET[@]}" -d "$DIR" -r "$WORK/pins.txt"
echo "$(wc -l < "$WORK/pins.txt") wheels in $DIR ($(du -sh "$DIR" | cut -f1)); carry it with the clone:"
echo "  bash tools/gpu_check.sh --wheels $DIR"
