#!/usr/bin/env bash
# Training and inference throughput on the CPU, side by side in one run: pare on burn-flex, pare
# on libtorch (`--features libtorch`, when scripts/build-libtorch has built it) and PyTorch, same
# models, batch, threads and random data. Rows: VGG-16 and ResNet-56 at batch 64, and a pruned
# ResNet-56 (>= 2.5x fewer MACs, the same pruned architecture in both frameworks: PyTorch builds
# it from the checkpoint's `pare.arch`) at batch 128.
# PyTorch runs as a tuned user would run it, each configuration a column: float32 NCHW,
# channels-last, and channels-last with bfloat16 autocast where the CPU has AVX-512 BF16 or AMX
# (COMPILE=1 adds the same under torch.compile); pare's ratio is against the fastest.
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
CONFIGS="fp32 channels_last"
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then
  CONFIGS="$CONFIGS bf16"
  [ "${COMPILE:-0}" = 1 ] && CONFIGS="$CONFIGS compile"
  echo "CPU: $(grep -owE 'avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')— PyTorch also runs with bf16 autocast" >&2
else
  echo "CPU: no AVX-512 BF16 or AMX — PyTorch's bf16 autocast would be emulated, so it is not run" >&2
fi
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
    for cfg in $CONFIGS; do
      "$VENV/bin/python" bench/pytorch_bench.py "$model" "$batch" "$STEPS" cpu "$cfg" 2>"$OUT/$key.pytorch.err" \
        | tail -1 >>"$OUT/$key.pytorch-$cfg" || { cat "$OUT/$key.pytorch.err" >&2; failed "PyTorch $cfg"; }
    done
  done
done
python3 - "$OUT" "$TORCH_VERSION" "$REPEATS" "$CONFIGS" vgg16-64 resnet56-64 "$(basename "$PRUNED" .safetensors)-128" <<'PY'
import json, os, statistics, sys
out, version, repeats, configs, keys = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(), sys.argv[5:]
def runs(key, fw):
    path = os.path.join(out, f"{key}.{fw}")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []
med = lambda rs, k: statistics.median(r[k] for r in rs) if rs else None
cell = lambda v: "—" if v is None else f"{v:.1f}"
for what, k in (("training", "train_img_s"), ("inference", "infer_img_s")):
    print(f"\n{what.capitalize()}, images/s (PyTorch {version}; pare's ratio against PyTorch's fastest configuration):\n")
    print("| model | batch | MACs (M) | pare flex | pare libtorch | " + " | ".join(f"PyTorch {c}" for c in configs)
          + " | flex / fastest PyTorch |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(configs) + "---:|")
    for i, key in enumerate(keys):
        f, t = runs(key, "flex"), runs(key, "libtorch")
        ps = {c: runs(key, f"pytorch-{c}") for c in configs}
        for c, rs in ps.items():
            assert f[0]["macs"] == rs[0]["macs"], f"pare counts {f[0]['macs']} MACs, PyTorch {c} {rs[0]['macs']}"
        best_c = max(configs, key=lambda c: med(ps[c], k))
        best = med(ps[best_c], k)
        name = "pruned resnet56" if i == 2 else f[0]["model"]
        row = [name, str(f[0]["batch"]), f"{f[0]['macs'] / 1e6:.2f}", cell(med(f, k)), cell(med(t, k))]
        row += [cell(med(ps[c], k)) for c in configs]
        row.append(f"{med(f, k) / best:.2f}× ({best_c})")
        print("| " + " | ".join(row) + " |")
print(f"\nMedians of {repeats} interleaved rounds; threads: 2 (pare: burn's default on this machine, PyTorch: set_num_threads(2)).")
# Each round runs the frameworks back to back, so its ratio pairs measurements taken moments
# apart: the spread of these shows how far a slow spell of the machine moves the medians above.
print("\nPer round, flex / fastest PyTorch configuration, training (inference):")
for i, key in enumerate(keys):
    f = runs(key, "flex")
    ps = [runs(key, f"pytorch-{c}") for c in configs]
    pairs = ", ".join(
        f"{a['train_img_s'] / max(p[r]['train_img_s'] for p in ps):.2f}× ({a['infer_img_s'] / max(p[r]['infer_img_s'] for p in ps):.2f}×)"
        for r, a in enumerate(f))
    print(f"- {'pruned resnet56' if i == 2 else f[0]['model']}: {pairs}")
PY
rm -rf "$OUT"
