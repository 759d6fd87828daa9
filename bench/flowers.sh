#!/usr/bin/env bash
# The paper's Flowers-102 comparison at 64×64 on 2 cores. A ResNet-18 (ImageNet
# stem) trained here from scratch on train+val (no ImageNet weights exist here), then pruned by
# each criterion to the same FLOPs target with the same fine-tuning budget (train+val,
# distillation from the unpruned model), evaluated on the 6,149 test images; the attribution
# model is exported int8 and checked on the QEMU board.
# Usage: [MODEL=resnet18] [WEIGHTS=trained.safetensors] [PARE=path/to/pare] [EPOCHS=24] [BUDGET=160] \
#        [TARGET=0.65] [CRITERIA="attribution taylor-guided taylor l1"] bench/flowers.sh [OUT_DIR]
# WEIGHTS skips the training (e.g. a model trained on a GPU by bench/gpu/run-flowers.sh); PARE
# picks another build (the libtorch one: scripts/build-libtorch).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env
OUT=${1:-$PARE_CACHE/flowers}
SHARED=${SHARED:-../shared}
DATA="$SHARED/data/flowers102-64"
EPOCHS=${EPOCHS:-24}
BUDGET=${BUDGET:-160}
TARGET=${TARGET:-0.65}
MODEL=${MODEL:-resnet18}
if [ -z "${PARE:-}" ]; then
  cargo build --release -p pare -q || exit 1
  PARE="$CARGO_TARGET_DIR/release/pare"
fi
mkdir -p "$OUT"
WEIGHTS=${WEIGHTS:-$OUT/$MODEL.safetensors}
if [ ! -f "$WEIGHTS" ]; then
  "$PARE" train --model "$MODEL" --data "$DATA" --input-size 64 --train-split trainval --epochs "$EPOCHS" \
    --batch-size 64 --lr 0.1 --label-smoothing 0.1 --eval-split test --out "$WEIGHTS" \
    > "$OUT/train.log" 2>&1 || { echo "training failed: see $OUT/train.log" >&2; exit 1; }
fi
for c in ${CRITERIA:-attribution taylor-guided taylor l1}; do
  start=$(date +%s)
  "$PARE" prune --weights "$WEIGHTS" --data "$DATA" --train-split trainval \
    --calib-split train --eval-split test --criterion "$c" --target-flops "$TARGET" --budget "$BUDGET" \
    --calib-samples 256 --out "$OUT/$c" > "$OUT/$c.log" 2>&1 || echo "$c failed: see $OUT/$c.log" >&2
  echo "$c $(( $(date +%s) - start ))" >> "$OUT/times.txt"
done
python3 bench/flowers_table.py "$OUT" "$MODEL"
