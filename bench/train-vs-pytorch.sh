#!/usr/bin/env bash
# Training and inference throughput, pare (burn-flex) vs PyTorch on the CPU, same models and
# batch. PyTorch goes into a throwaway venv under $PARE_CACHE (for the comparison only).
# Usage: bench/train-vs-pytorch.sh [STEPS]   — prints Markdown rows for BENCHMARKS.md.
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
echo "| model | batch | pare train img/s | PyTorch train img/s | ratio | pare inference img/s | PyTorch inference img/s | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for model in vgg16 resnet56; do
  p=$("$CARGO_TARGET_DIR/release/pare" bench train --model "$model" --batch 64 --steps "$STEPS" | tail -1)
  t=$("$VENV/bin/python" bench/pytorch_bench.py "$model" 64 "$STEPS" | tail -1)
  python3 - "$p" "$t" <<'PY'
import json, sys
p, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"| {p['model']} | {p['batch']} | {p['train_img_s']:.1f} | {t['train_img_s']:.1f} | {p['train_img_s']/t['train_img_s']:.2f}× "
      f"| {p['infer_img_s']:.1f} | {t['infer_img_s']:.1f} | {p['infer_img_s']/t['infer_img_s']:.2f}× |")
PY
done
