#!/usr/bin/env bash
# One command on one H100/H200, under 8 minutes: the GPU numbers docs/benchmarks.md records.
#
#   bash tools/gpu_check.sh            # results in $OUT (default gpu-check/), a summary printed
#
# 1. Batch-OMP, Triton and torch paths against the eager baseline, at the shapes of
#    docs/benchmarks.md, with peak memory at (262144, 64, 1024, 16);
# 2. VQ nearest-code search against vector-quantize-pytorch when installed; the K-SVD and
#    online dictionary sweeps as captured CUDA graphs against eager launches and the CPU;
# 3. 200 bf16 steps of recipes/tokenizers/vqgan-f16.yaml at 256 px (random LPIPS backbone unless
#    its weights are cached), images per second and peak memory from metrics.jsonl.
# The GPU machine reaches no package index: wheels in .whl/ (tools/gpu_wheels.txt says which and
# how to fetch them) are installed first, and LASER itself is installed from this checkout.
# Targets: OMP <= 20 ns per signal at (65536, 64, 512, 8) and >= 10x the eager baseline;
# < 2 GiB peak at (262144, 64, 1024, 16).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
SITE=${LASER_SITE:-/tmp/laser-site}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" .
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"

CONFIGS=65536x64x512x8,65536x3x16x4,16384x256x2048x2,262144x64x1024x16
for backend in triton torch; do
  timeout 150 python3 tools/bench_bottlenecks.py --device cuda --sections omp \
    --configs "$CONFIGS" --backend "$backend" --sklearn-signals 256 2>&1 | tee "$OUT/omp-$backend.txt" || true
done
timeout 60 python3 tools/gpu_omp_memory.py 262144x64x1024x16 2>&1 | tee "$OUT/omp-memory.txt" || true
timeout 90 python3 tools/bench_bottlenecks.py --device cuda --sections vq 2>&1 | tee "$OUT/vq.txt" || true
timeout 90 python3 tools/gpu_dictionary_sweeps.py 2>&1 | tee "$OUT/dictionary-sweeps.txt" || true

timeout 240 python3 -m laser_core.cli run recipes/tokenizers/vqgan-f16.yaml \
  train.steps=200 train.log_every=50 train.eval_every=0 train.checkpoint_every=0 \
  losses.perceptual_backbone=random 'metrics=[mse, psnr]' discriminator.start_step=100 \
  data.train_patches=1024 data.val_patches=16 --run-dir "$OUT/vqgan-f16" 2>&1 | tail -5 || true
python3 - "$OUT/vqgan-f16/metrics.jsonl" <<'PY' | tee "$OUT/vqgan-f16.txt"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"train"' in line]
timed = [r for r in rows if "images_per_second" in r]
print("vqgan f16 256px bf16: images/s", [round(r["images_per_second"], 1) for r in timed],
      "peak GiB", max(r.get("max_memory_gib", 0) for r in rows))
PY
