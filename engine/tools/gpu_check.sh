#!/usr/bin/env bash
# One prepared run for a lent GPU machine (the device tool). That machine has torch + CUDA but no
# MediaPipe, ffmpeg or stlpips-pytorch and cannot reach ../shared, so first, here:
#   .venv/bin/python -m engine.tools.device_pack --cache ~/.cache/visage/train --frames 26
# and carry `.gpu` with the call. The run: GPU tests (compiled fp16 vs eager fp32), per-stage
# times of both tiers eager fp32 vs compiled fp16, then GPU-tier training (warp stage, then
# joint, with the CPU tier's round-3 recipe: the app's recorded targets, which the packed clips
# carry, SSIM, no GAN, fusion over the painted mouth) within a time budget. Figures and weights
# land in $OUT (default ./gpu_out).
# Usage: bash engine/tools/gpu_check.sh [total_seconds] [warp_minutes] [batch]
# (the joint stage trains until total_seconds after the start, less a margin to save)
set -uo pipefail
cd "$(dirname "$0")/../.."
START=$(date +%s)
OUT=${OUT:-gpu_out}
PY=${PYTHON:-python3}
TOTAL=${1:-560}
WARP_MIN=${2:-0.75}
BATCH=${3:-32}
export PYTHONPATH=$PWD/.gpu/site:$PWD PYTHONUNBUFFERED=1
mkdir -p "$OUT"
LOG=$OUT/log.txt
quiet() { grep --line-buffered -v '^[WI]0000 '; }
step() { echo "== $(date +%T) $*" >>"$LOG"; }

step setup
{ nvidia-smi; $PY -c "import torch, numpy, cv2; print('torch', torch.__version__, 'cuda',
  torch.version.cuda, torch.cuda.get_device_name(0), 'numpy', numpy.__version__, 'cv2',
  cv2.__version__)"; } >>"$LOG" 2>&1
CACHE=/tmp/visage_clips
$PY -m engine.tools.gpu_run unpack .gpu/clips "$CACHE" >"$OUT/unpack.txt" 2>&1 &

step "gpu tests"
timeout 150 $PY -m engine.tools.gpu_run pytest -m gpu -q -p no:cacheprovider -rs \
  tests/engine/gpu 2>&1 | quiet >>"$LOG"

step bench
timeout 170 $PY -m engine.tools.gpu_run bench --tiers cpu,gpu --backends eager,auto \
  --frames 150 2>>"$LOG" | quiet >"$OUT/bench.txt"
wait
cat "$OUT/unpack.txt" >>"$LOG" && rm "$OUT/unpack.txt"

train() {
  timeout "$1" $PY -m engine.tools.gpu_run visage train --tier gpu --batch "$BATCH" \
    --cache "$CACHE" --videos /nonexistent --steps 100000 --log-every 25 --save-every 500 \
    "${@:2}" 2>&1 | quiet >>"$LOG"
}
step "train warp"
train "$(python3 -c "print(int($WARP_MIN * 60 + 90))")" --stage warp --out /tmp/gpu_warp \
  --max-minutes "$WARP_MIN"
step "train joint"
JOINT_MIN=$(python3 -c "print(max(0.2, ($START + $TOTAL - $(date +%s) - 45) / 60))")
step "joint budget $JOINT_MIN min"
train "$(python3 -c "print(int($JOINT_MIN * 60 + 90))")" --stage joint --out /tmp/gpu_joint \
  --init /tmp/gpu_warp --max-minutes "$JOINT_MIN" --w-ssim 1 --w-gan 0 --w-fm 0 \
  --warp-lr-factor 1 --identity-reference driving --painted-mouth
step done
for net in warp fusion; do
  mkdir -p "$OUT/gpu/$net"
  cp /tmp/gpu_joint/$net/model.safetensors /tmp/gpu_joint/$net/config.json "$OUT/gpu/$net/"
done
cp /tmp/gpu_joint/train.json "$OUT/train.json"
tail -n 30 "$LOG"
