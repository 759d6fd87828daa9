#!/usr/bin/env bash
# Training and inference throughput on the CPU, side by side in one run: pare on burn-flex, pare
# on libtorch (`--features libtorch`, when scripts/build-libtorch has built it) and PyTorch, same
# models, batch, threads and random data. Rows: VGG-16 and ResNet-56 at batch 64, and a pruned
# ResNet-56 (>= 2.5x fewer MACs, the same pruned architecture in both frameworks: PyTorch builds
# it from the checkpoint's `pare.arch`) at batch 128.
# Usage: bench/train-vs-pytorch.sh [STEPS] — prints Markdown rows for BENCHMARKS.md.
#   PRUNED=path.safetensors picks the pruned network (default: made here with l1, synthetic data).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env
STEPS=${1:-10}
VENV="$PARE_CACHE/torch-venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch
fi
cargo build --release -p pare -q
FLEX="$CARGO_TARGET_DIR/release/pare"
TORCH_PARE="$PARE_CACHE/target-tch/release/pare"
[ -x "$TORCH_PARE" ] || { echo "(pare with libtorch not built: scripts/build-libtorch; its columns are empty)" >&2; TORCH_PARE=""; }
PRUNED=${PRUNED:-$PARE_CACHE/bench-pruned-resnet56/final.safetensors}
if [ ! -f "$PRUNED" ]; then
  "$FLEX" prune --model resnet56 --data synthetic --criterion l1 --target-flops 0.38 --budget 0 \
    --final-steps 0 --out "$(dirname "$PRUNED")" >/dev/null
fi
echo "| model | batch | MACs (M) | pare flex train | pare libtorch train | PyTorch $("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])') train | libtorch/PyTorch | pare flex inference | pare libtorch inference | PyTorch inference | libtorch/PyTorch |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
run() {  # model batch
  local f t p
  f=$("$FLEX" bench train --model "$1" --batch "$2" --steps "$STEPS" --device flex | tail -1)
  t='{}'
  [ -n "$TORCH_PARE" ] && t=$("$TORCH_PARE" bench train --model "$1" --batch "$2" --steps "$STEPS" --device libtorch | tail -1)
  p=$("$VENV/bin/python" bench/pytorch_bench.py "$1" "$2" "$STEPS" 2>/dev/null | tail -1)
  python3 - "$1" "$f" "$t" "$p" <<'PY'
import json, os, sys
name, f, t, p = sys.argv[1], *map(json.loads, sys.argv[2:])
name = "pruned resnet56" if name.endswith(".safetensors") else name
assert f["macs"] == p["macs"], f"pare counts {f['macs']} MACs, PyTorch {p['macs']}: not the same network"
g = lambda d, k: f"{d[k]:.1f}" if k in d else "—"
r = lambda k: f"{t[k] / p[k]:.2f}×" if k in t else "—"
print(f"| {name} | {f['batch']} | {f['macs'] / 1e6:.2f} | {g(f, 'train_img_s')} | {g(t, 'train_img_s')} | {g(p, 'train_img_s')} | {r('train_img_s')} "
      f"| {g(f, 'infer_img_s')} | {g(t, 'infer_img_s')} | {g(p, 'infer_img_s')} | {r('infer_img_s')} |")
PY
}
run vgg16 64
run resnet56 64
run "$PRUNED" 128
