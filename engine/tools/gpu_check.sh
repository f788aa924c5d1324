#!/usr/bin/env bash
# One prepared run for a lent GPU machine (see the device tool; nothing can be downloaded there,
# so it uses the machine's own Python with torch + CUDA, and torch-tensorrt when present).
# Runs the GPU tests, times both tiers eager fp32 vs compiled fp16 per stage, then trains the
# GPU tier for a while. Figures land in $OUT (default ./gpu_out).
# Usage: bash engine/tools/gpu_check.sh [train_seconds]
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu_out}
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
$PY -m engine.cli doctor > "$OUT/doctor.txt" 2>&1
$PY -m pytest -m gpu -q -p no:cacheprovider > "$OUT/gpu_tests.txt" 2>&1
for backend in eager auto; do
  $PY -m engine.cli bench --tiers cpu,gpu --backend "$backend" --frames 200 \
    > "$OUT/bench_$backend.txt" 2>&1
done
if [ -d ../shared/data/faces/videos ]; then
  timeout "${1:-240}" $PY -m engine.cli train --stage joint --tier gpu --batch 16 \
    --steps 100000 --out "$OUT/gpu_joint" --perceptual vgg16 > "$OUT/train.txt" 2>&1
fi
tail -n 5 "$OUT"/*.txt
