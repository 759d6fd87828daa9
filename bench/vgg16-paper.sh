#!/usr/bin/env bash
# The paper's VGG-16 / CIFAR-10 comparison: each criterion pruned to the FLOPs
# reduction the paper reports for it (L1 34.39 %, SSS 41.72 %, Zhao et al. 39.49 %, Taylor
# 59.24 %, Taylor-guided 79.30 %) and attribution to the largest of them, from the same
# VGG-16-BN, with the same fine-tuning budget (pare prune's defaults: distillation, BatchNorm
# re-estimation, recovery fine-tune after the last removal), then one table beside the paper's
# figures and the per-class table of the original vs the attribution-pruned model.
# Usage: [WEIGHTS=vgg16.safetensors] [BUDGET=2ep] [RUNS="l1:0.3439 …"] [PARE=path]
#        bench/vgg16-paper.sh [OUT_DIR] [extra pare prune args…]
#   WEIGHTS: a trained VGG-16-BN in pare's layout (BENCHMARKS "On a GPU" made one:
#            $PARE_CACHE/vgg16-gpu/vgg16-ft2.safetensors, 92.39 % on test_lossless).
#   PARE:    e.g. the libtorch build ($PARE_CACHE/target-tch/release/pare); default: the default build.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env
OUT=${1:-$PARE_CACHE/vgg16-paper}; shift || true
SHARED=${SHARED:-../shared}
WEIGHTS=${WEIGHTS:-$PARE_CACHE/vgg16-gpu/vgg16-ft2.safetensors}
BUDGET=${BUDGET:-2ep}
RUNS=${RUNS:-"l1:0.3439 sss:0.4172 variational:0.3949 taylor:0.5924 taylor-guided:0.7930 attribution:0.7930"}
[ -f "$WEIGHTS" ] || { echo "missing $WEIGHTS: set WEIGHTS to a trained VGG-16-BN (see BENCHMARKS.md, 'On a GPU')" >&2; exit 2; }
if [ -z "${PARE:-}" ]; then
  cargo build --release -p pare -q || exit 1
  PARE="$CARGO_TARGET_DIR/release/pare"
fi
mkdir -p "$OUT"
for r in $RUNS; do
  c=${r%%:*}; f=${r#*:}
  start=$(date +%s)
  echo "$(date +%T) $c to −$f FLOPs: log in $OUT/$c-$f.log" >&2
  "$PARE" prune --model vgg16 --weights "$WEIGHTS" --data "$SHARED/data/cifar10" \
    --train-split train_lossless --eval-split test_lossless --criterion "$c" --target-flops "$f" \
    --budget "$BUDGET" --batch-size 64 --calib-samples 256 --out "$OUT/$c-$f" "$@" > "$OUT/$c-$f.log" 2>&1 \
    || echo "$c failed: see $OUT/$c-$f.log" >&2
  echo "$c-$f $(( $(date +%s) - start ))" >> "$OUT/times.txt"
done
python3 bench/vgg16_paper_table.py "$OUT" "$BUDGET"
