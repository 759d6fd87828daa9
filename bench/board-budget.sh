#!/usr/bin/env bash
# Resnet20 pruned to half its measured int8 instruction count on the QEMU board, the
# same schedule and fine-tune budget for every ranking, side by side in one invocation:
#   budget        --max-latency 50% (ranked by score per √instruction freed: the default
#                 cost exponent 0.5)
#   budget-greedy the same with --cost-exponent 1 (score per instruction: HALP's greedy)
#   score        --max-latency 50% --rank score (the ranking a --target-flops run uses)
#   macs         --max-latency 50% --rank macs  (score per MAC: FLOPs-aware)
#   flops         --target-flops 0.5, no board budget (the FLOPs-targeted main job), measured after
#   flops-matched --target-flops $MATCHED (default 0.596: the FLOPs cut the score-ranked run
#                 needed to reach the latency budget), measured after
# Under a latency budget each step is a share (--step, 0.25) of the unpruned latency, so every
# ranking takes the same pace.
# then prints the table for BENCHMARKS.md.
# Usage: [BUDGET=726] [RUNS="budget budget-greedy score flops"] bench/board-budget.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env
OUT=${1:-$PARE_CACHE/board-budget}
SHARED=${SHARED:-../shared}
BUDGET=${BUDGET:-726}
cargo build --release -p pare -q || exit 1
PARE="$CARGO_TARGET_DIR/release/pare"
mkdir -p "$OUT"
touch "$OUT/times.txt"
common=(--model resnet20 --weights "$SHARED/models/resnet-cifar10/resnet20.safetensors"
  --data "$SHARED/data/cifar10" --eval-split test_lossless --train-split train_lossless
  --budget "$BUDGET" --batch-size 64 --calib-samples 256)
for r in ${RUNS:-budget budget-greedy score flops}; do
  start=$(date +%s)
  case $r in
    flops) extra=(--target-flops 0.5) ;;
    flops-matched) extra=(--target-flops "${MATCHED:-0.596}") ;;
    budget-greedy) extra=(--max-latency 50% --rank budget --cost-exponent 1) ;;
    *) extra=(--max-latency 50% --rank "$r") ;;
  esac
  "$PARE" prune "${common[@]}" "${extra[@]}" --out "$OUT/$r" > "$OUT/$r.log" 2>&1 || echo "$r failed: see $OUT/$r.log" >&2
  if [ "${r#flops}" != "$r" ]; then
    # The FLOPs-targeted model's instruction count, measured the same way (one traced sample).
    "$PARE" export --model resnet20 --weights "$OUT/$r/final.safetensors" --calib-data "$SHARED/data/cifar10" \
      --out "$OUT/$r/model.pare" >> "$OUT/$r.log" 2>&1
    "$PARE" flash "$OUT/$r/model.pare" --data "$SHARED/data/cifar10" --split test_lossless --samples 1 \
      --json "$OUT/$r/board.json" >> "$OUT/$r.log" 2>&1 || echo "$r flash failed" >&2
  fi
  echo "$r $(( $(date +%s) - start ))" >> "$OUT/times.txt"
done
python3 bench/board_budget_table.py "$OUT"
