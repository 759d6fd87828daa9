#!/usr/bin/env bash
# Torch-Pruning 1.6.1 vs pare, side by side on the pretrained CIFAR-10 ResNet-56: the same
# weights, data, MACs target (at least 2.6x fewer MACs, 61.5 % less of 125.49 M) and wall-clock
# budget (counted from the start of the pruning), one after the other, then one Markdown table:
# MACs and ratio, parameters, top-1 on test_lossless.bin (1,668 bit-exact images: the figure to
# compare with published ones) and on test_batch.bin, wall time.
#   Torch-Pruning: GroupTaylorImportance, 5 progressive steps with no fine-tuning in between, then
#     SGD (lr 0.01 cosine over the time left, momentum 0.9, wd 5e-4, batch 128, crop + flip) on
#     all 50,000 training images until the budget runs out; 2 threads (bench/torch_pruning_resnet56.py).
#   pare: `pare prune` with its defaults, --target-flops 0.62 --budget BUDGET.
# Torch-Pruning and PyTorch go into the throwaway venv under $PARE_CACHE that
# bench/train-vs-pytorch.sh uses; outputs and logs go to $PARE_CACHE/vs-torch-pruning.
# Usage: bench/vs-torch-pruning.sh [BUDGET]   — BUDGET is wall-clock time: 50m (default), 600s, 1h.
#   SHARED=DIR overrides ../shared (models/resnet-cifar10, data/cifar10).
#   PARE=path runs that pare binary, e.g. the libtorch build of scripts/build-libtorch
#   ($PARE_CACHE/target-tch/release/pare); default: the default build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env
BUDGET=${1:-50m}
SHARED=${SHARED:-../shared}
WEIGHTS="$SHARED/models/resnet-cifar10/resnet56.safetensors"
DATA="$SHARED/data/cifar10"
OUT="$PARE_CACHE/vs-torch-pruning"
VENV="$PARE_CACHE/torch-venv"

# Both sides get a wall-clock budget, so steps (2000) or epochs (5ep) are refused here.
BUDGET_S=$(awk -v b="$BUDGET" 'BEGIN {
  n = b; u = substr(b, length(b)); sub(/[smh]$/, "", n)
  if (n !~ /^[0-9]+(\.[0-9]+)?$/ || n + 0 <= 0 || u !~ /[smh]/) exit 1
  printf "%.0f", n * (u == "h" ? 3600 : u == "m" ? 60 : 1) }') \
  || { echo "BUDGET must be wall-clock time such as 50m, 600s or 1h, not '$BUDGET'" >&2; exit 2; }
for f in "$WEIGHTS" "$DATA/test_lossless.bin" "$DATA/test_batch.bin" "$DATA/data_batch_5.bin"; do
  [ -f "$f" ] || { echo "missing $f (set SHARED=...)" >&2; exit 2; }
done

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import torch' 2>/dev/null || "$VENV/bin/pip" install -q torch
"$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("torch-pruning") != "1.6.1")' 2>/dev/null \
  || "$VENV/bin/pip" install -q torch-pruning==1.6.1
if [ -z "${PARE:-}" ]; then
  cargo build --release -p pare -q
  PARE="$CARGO_TARGET_DIR/release/pare"
fi
BACKEND=$("$PARE" bench train --model tiny --batch 2 --steps 1 | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["framework"])')
echo "$BACKEND" > "$OUT.backend"

rm -rf "$OUT"
mkdir -p "$OUT"
# Runs "$@" with its output in the log $1; on failure shows the log's end.
logged() {
  local log=$1; shift
  echo "$(date +%T) $(basename "$log" .log): log in $log" >&2
  "$@" > "$log" 2>&1 || { tail -n 30 "$log" >&2; echo "failed: see $log" >&2; exit 1; }
}

start=$(date +%s)
logged "$OUT/pare-prune.log" "$PARE" prune --model resnet56 --weights "$WEIGHTS" --data "$DATA" \
  --train-split train --eval-split test_lossless --target-flops 0.62 --budget "$BUDGET" \
  --batch-size 128 --out "$OUT/pare"
echo $(( $(date +%s) - start )) > "$OUT/pare-process-seconds"
logged "$OUT/pare-eval.log" "$PARE" eval --weights "$OUT/pare/final.safetensors" --data "$DATA" \
  --split test_batch --json "$OUT/pare-test_batch.json"

start=$(date +%s)
logged "$OUT/torch-pruning.log" "$VENV/bin/python" bench/torch_pruning_resnet56.py --weights "$WEIGHTS" \
  --data "$DATA" --budget-s "$BUDGET_S" --speedup 2.6 --out "$OUT/torch-pruning"
echo $(( $(date +%s) - start )) > "$OUT/torch-pruning-process-seconds"
grep -E '^(unpruned|pruned|final):' "$OUT/torch-pruning.log" >&2 || true

mv "$OUT.backend" "$OUT/pare-backend"
python3 - "$OUT" "$BUDGET" "$BUDGET_S" <<'PY' | tee "$OUT/table.md"
import json, pathlib, sys
out, budget, budget_s = pathlib.Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
tp = json.loads((out / "torch-pruning/result.json").read_text())
rep = json.loads((out / "pare/report.json").read_text())
h = rep["history"]
pare_test = json.loads((out / "pare-test_batch.json").read_text())["top1"]
base_macs, base_params = h[0]["macs"], h[0]["params"]
proc = {n: int((out / f"{n}-process-seconds").read_text()) for n in ["pare", "torch-pruning"]}
pare_s = sum(x["seconds"] for x in h)  # pare's budgeted time: iteration 0's evaluation onwards

def row(name, macs, params, ll, te, secs):
    ll = f"{100 * ll:.2f} %" if ll is not None else "—"
    te = f"{100 * te:.2f} %" if te is not None else "—"
    t = f"{secs / 60:.1f} min" if secs is not None else "—"
    print(f"| {name} | {macs / 1e6:.2f} | {base_macs / macs:.2f}× ({100 * (1 - macs / base_macs):.1f} %) "
          f"| {params / 1e3:.1f} k | {ll} | {te} | {t} |")

print(f"ResNet-56 on CIFAR-10, at least 2.6× fewer MACs, budget {budget} of wall-clock time from the start of the pruning")
print()
print("| method | MACs (M) | MACs ratio (reduction) | params | top-1 test_lossless (1,668) | top-1 test_batch (10,000) | wall time |")
print("|---|---:|---:|---:|---:|---:|---:|")
row("ResNet-56 unpruned", base_macs, base_params, h[0]["top1"],
    None if tp["smoke"] else tp["unpruned"]["top1_test"], None)
row(f"{tp['method']} ({'global' if tp['global_pruning'] else 'per-layer'}, 5 steps, then SGD)",
    tp["macs"], tp["params"], tp["top1_lossless"], tp["top1_test"], tp["seconds"])
last = h[-1]
backend = (out / "pare-backend").read_text().strip().removeprefix("pare/")
row(f"pare prune {rep['config']['criterion']} ({len([x for x in h[1:] if x['removed'] > 0])} removals, {backend})",
    last["macs"], last["params"], last["top1"], pare_test, pare_s)
print()
print(f"Wall time: from the start of the pruning to the end of the last test_lossless evaluation "
      f"(pare: the sum of report.json's iteration seconds). Whole processes, with loading and the "
      f"unpruned checks: pare prune {proc['pare'] / 60:.1f} min, Torch-Pruning {proc['torch-pruning'] / 60:.1f} min "
      f"(its pruning ratio {tp['pruning_ratio']:.4f}, bisected on copies inside the budget: {tp['prune_seconds']:.0f} s; "
      f"{tp['finetune_steps']} fine-tuning steps). test_batch is evaluated after the budget for both.")
if tp["smoke"]:
    print("WARNING: Torch-Pruning ran in smoke mode (TP_SMOKE=1): its figures are not results.")
PY
