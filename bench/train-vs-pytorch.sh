#!/usr/bin/env bash
# Training and inference throughput on the CPU, side by side in one run: pare on burn-flex, pare
# on libtorch (`--features libtorch`, when scripts/build-libtorch has built it) and PyTorch, same
# models, batch, threads and random data. Rows: VGG-16 and ResNet-56 at batch 64, and a pruned
# ResNet-56 (>= 2.5x fewer MACs, the same pruned architecture in both frameworks: PyTorch builds
# it from the checkpoint's `pare.arch`) at batch 128.
# Usage: bench/train-vs-pytorch.sh [STEPS] — prints a Markdown table for BENCHMARKS.md.
#   REPEATS=3 rounds (medians).
#   PRUNED=path.safetensors picks the pruned network (default: made here with l1, synthetic data).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env
STEPS=${1:-10}
REPEATS=${REPEATS:-3}
VENV="$PARE_CACHE/torch-venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch
fi
cargo build --release -p pare -q
FLEX="$CARGO_TARGET_DIR/release/pare"
TORCH_PARE="$PARE_LIBTORCH_TARGET/release/pare"
[ -x "$TORCH_PARE" ] || { echo "(pare with libtorch not built: scripts/build-libtorch; its columns are empty)" >&2; TORCH_PARE=""; }
PRUNED=${PRUNED:-$PARE_CACHE/bench-pruned-resnet56/final.safetensors}
if [ ! -f "$PRUNED" ]; then
  "$FLEX" prune --model resnet56 --data synthetic --criterion l1 --target-flops 0.62 --finetune-steps 0 \
    --no-distill --out "$(dirname "$PRUNED")" >/dev/null
fi
TORCH_VERSION=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
OUT=$(mktemp -d)
# Rounds interleave the three frameworks so that a slow spell of this shared machine hits all of
# them; the table shows each column's median over the rounds.
for round in $(seq "$REPEATS"); do
  for spec in vgg16:64 resnet56:64 "$PRUNED:128"; do
    model=${spec%:*} batch=${spec##*:} key=$(basename "$model" .safetensors)-$batch
    # A failing bench names its row (set -e alone would end the script without a word).
    failed() { echo "train-vs-pytorch: the $1 bench failed on $model (batch $batch)" >&2; exit 1; }
    "$FLEX" bench train --model "$model" --batch "$batch" --steps "$STEPS" --device flex | tail -1 >>"$OUT/$key.flex" \
      || failed "pare flex"
    if [ -n "$TORCH_PARE" ]; then
      "$TORCH_PARE" bench train --model "$model" --batch "$batch" --steps "$STEPS" --device libtorch | tail -1 \
        >>"$OUT/$key.libtorch" || failed "pare libtorch"
    fi
    "$VENV/bin/python" bench/pytorch_bench.py "$model" "$batch" "$STEPS" 2>"$OUT/$key.pytorch.err" | tail -1 \
      >>"$OUT/$key.pytorch" || { cat "$OUT/$key.pytorch.err" >&2; failed PyTorch; }
  done
done
python3 - "$OUT" "$TORCH_VERSION" "$REPEATS" vgg16-64 resnet56-64 "$(basename "$PRUNED" .safetensors)-128" <<'PY'
import json, os, statistics, sys
out, version, repeats, keys = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def runs(key, fw):
    path = os.path.join(out, f"{key}.{fw}")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []
print(f"| model | batch | MACs (M) | pare flex train | pare libtorch train | PyTorch {version} train | flex/PyTorch "
      f"| libtorch/PyTorch | pare flex inference | pare libtorch inference | PyTorch inference | flex/PyTorch | libtorch/PyTorch |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for i, key in enumerate(keys):
    f, t, p = runs(key, "flex"), runs(key, "libtorch"), runs(key, "pytorch")
    assert f[0]["macs"] == p[0]["macs"], f"pare counts {f[0]['macs']} MACs, PyTorch {p[0]['macs']}: not the same network"
    med = lambda rs, k: statistics.median(r[k] for r in rs) if rs else None
    cell = lambda v: "—" if v is None else f"{v:.1f}"
    ratio = lambda a, b: "—" if a is None else f"{a / b:.2f}×"
    name = "pruned resnet56" if i == 2 else f[0]["model"]
    row = [name, str(f[0]["batch"]), f"{f[0]['macs'] / 1e6:.2f}"]
    for k in ("train_img_s", "infer_img_s"):
        a, b, c = med(f, k), med(t, k), med(p, k)
        row += [cell(a), cell(b), cell(c), ratio(a, c), ratio(b, c)]
    print("| " + " | ".join(row) + " |")
print(f"\nMedians of {repeats} interleaved rounds; threads: 2 (pare: burn's default on this machine, PyTorch: set_num_threads(2)).")
# Each round runs the frameworks back to back, so its ratio pairs measurements taken moments
# apart: the spread of these shows how far a slow spell of the machine moves the medians above.
print("\nPer round, flex/PyTorch training (inference) ratio, and PyTorch's training range:")
for i, key in enumerate(keys):
    f, p = runs(key, "flex"), runs(key, "pytorch")
    pairs = ", ".join(f"{a['train_img_s'] / b['train_img_s']:.2f}× ({a['infer_img_s'] / b['infer_img_s']:.2f}×)" for a, b in zip(f, p))
    lo, hi = min(r["train_img_s"] for r in p), max(r["train_img_s"] for r in p)
    print(f"- {'pruned resnet56' if i == 2 else f[0]['model']}: {pairs}; PyTorch {lo:.1f}–{hi:.1f} img/s")
PY
rm -rf "$OUT"
