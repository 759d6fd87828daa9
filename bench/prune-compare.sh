#!/usr/bin/env bash
# Prunes a pretrained CIFAR ResNet (MODEL=resnet20, the default, or resnet32/44/56) with every
# criterion to the same FLOPs target and the same fine-tuning budget in optimiser steps (pare prune's recovery defaults: distillation, BatchNorm
# re-estimation, mean group scores, a recovery fine-tune) and prints the comparison table (for
# BENCHMARKS.md).
# Usage: [MODEL=resnet20] [TRAIN_SPLIT=train_lossless] [BUDGET=726] [CRITERIA="sss l1"] [PARE=path]
#        bench/prune-compare.sh [OUT_DIR] [extra pare prune args...]
#   PARE: e.g. the libtorch build ($PARE_CACHE/target-tch/release/pare); default: the default build.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env
OUT=${1:-$PARE_CACHE/prune-compare-lossless}; shift || true
SHARED=${SHARED:-../shared}
TRAIN_SPLIT=${TRAIN_SPLIT:-train_lossless}
BUDGET=${BUDGET:-726}
MODEL=${MODEL:-resnet20}
if [ -z "${PARE:-}" ]; then
  cargo build --release -p pare -q || exit 1
  PARE="$CARGO_TARGET_DIR/release/pare"
fi
mkdir -p "$OUT"
for c in ${CRITERIA:-attribution taylor-guided taylor l1 bn-scale random sss variational}; do
  start=$(date +%s)
  "$PARE" prune --model "$MODEL" --weights "$SHARED/models/resnet-cifar10/$MODEL.safetensors" \
    --data "$SHARED/data/cifar10" --eval-split test_lossless --train-split "$TRAIN_SPLIT" --criterion "$c" \
    --target-flops 0.5 --budget "$BUDGET" --batch-size 64 \
    --calib-samples 256 --out "$OUT/$c" "$@" > "$OUT-$c.log" 2>&1 || echo "$c failed: see $OUT-$c.log" >&2
  echo "$c $(( $(date +%s) - start )) s" >> "$OUT-times.txt"
done
python3 bench/compare_table.py "$OUT" "$OUT-times.txt"
