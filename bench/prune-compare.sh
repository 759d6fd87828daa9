#!/usr/bin/env bash
# Prunes the pretrained ResNet-20 with every criterion to the same FLOPs target and fine-tune
# budget, then prints one Markdown row per criterion (for BENCHMARKS.md).
# Usage: bench/prune-compare.sh [OUT_DIR] [extra pare prune args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env
OUT=${1:-$PARE_CACHE/prune-compare}; shift || true
SHARED=${SHARED:-../shared}
cargo build --release -p pare -q
PARE="$CARGO_TARGET_DIR/release/pare"
for c in attribution taylor-guided taylor l1 random; do
  start=$(date +%s)
  "$PARE" prune --model resnet20 --weights "$SHARED/models/resnet-cifar10/resnet20.safetensors" \
    --data "$SHARED/data/cifar10" --eval-split test_lossless --criterion "$c" \
    --target-flops 0.5 --step 0.08 --finetune-steps 150 --finetune-lr 0.01 --batch-size 64 \
    --calib-samples 256 --out "$OUT/$c" "$@" > "$OUT-$c.log" 2>&1
  echo "$c $(( $(date +%s) - start )) s" >> "$OUT-times.txt"
done
