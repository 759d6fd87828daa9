#!/usr/bin/env bash
# Needs a CUDA GPU with PyTorch and NVIDIA's Vulkan driver (for burn-wgpu; no Rust toolchain:
# pare comes prebuilt in .devbin). Is attribution's deficit on the
# GPU-trained Flowers-102 models (BENCHMARKS.md) a matter of the 160-step fine-tuning budget the
# 2-core tables could afford? Trains a ResNet-18 at 64×64 from scratch as run-flowers.sh does
# (PyTorch CUDA, bench/gpu/train_flowers.py, BUDGET_S seconds), then pare prunes it on the GPU
# (burn-wgpu on Vulkan, `--device gpu`) by each criterion to −65 % FLOPs with STEPS fine-tuning
# steps on train+val (distillation from the unpruned model, pare's defaults otherwise), the
# criteria side by side on the one GPU, and evaluates on the 6,149 test images.
# Inputs beside the checkout (ignored by git): .gl (Vulkan loader debs, see device-env.sh), .flowers (jpg/, imagelabels.mat, setid.mat,
# arch/resnet18-arch.json; see run-flowers.sh), .devbin/pare.xz (an x86-64 release build of
# this checkout, xz-compressed). Results: $OUT/results.tar.xz (logs, report.json/.md, state.json
# per criterion) and $OUT/summary.txt. Afterwards bench/flowers_table.py on the unpacked
# folder prints the table (touch <criterion>/final.safetensors where state.json says done: the
# checkpoints are not in the results).
set -u
OUT=${OUT:-/tmp/pare-gpu-out}
BUDGET_S=${BUDGET_S:-110}
STEPS=${STEPS:-800}
CAP_S=${CAP_S:-380}
CRITERIA=${CRITERIA:-attribution taylor-guided taylor l1}
W=/tmp/w
mkdir -p "$OUT" "$W/shards"
source bench/gpu/device-env.sh
unpack_pare .devbin/pare.xz /tmp/pare
nvidia-smi -L 2>/dev/null || true
if [ ! -f "$W/resnet18.safetensors" ]; then
  python3 bench/gpu/train_flowers.py .flowers .flowers/arch/resnet18-arch.json "$W/shards" resnet18 "$BUDGET_S" 0.1 300 \
    >"$W/train.log" 2>&1 || { tail -20 "$W/train.log"; exit 1; }
  python3 bench/gpu/merge_shards.py "$W/resnet18.safetensors" "$W"/shards/resnet18-*.safetensors || exit 1
fi
tail -3 "$W/train.log"
# The unpruned model on the GPU, which also decodes the splits once for the runs below.
for split in test trainval train; do
  timeout 120 /tmp/pare eval --device gpu --weights "$W/resnet18.safetensors" --data .flowers --split "$split" \
    --json "$W/eval-$split.json" >"$W/eval-$split.log" 2>&1
  echo "unpruned on $split: $(tail -1 "$W/eval-$split.log")"
done
for c in $CRITERIA; do
  (
    start=$(date +%s)
    timeout "$CAP_S" /tmp/pare prune --device gpu --weights "$W/resnet18.safetensors" --data .flowers \
      --train-split trainval --calib-split train --eval-split test --criterion "$c" --target-flops 0.65 \
      --budget "$STEPS" --calib-samples 256 --out "$W/$c" >"$W/$c.log" 2>&1
    rc=$?
    echo "$c $(($(date +%s) - start))" >>"$W/times.txt"
    echo "$c rc $rc" >>"$W/rc.txt"
  ) &
done
wait
cat "$W/times.txt" "$W/rc.txt"
for c in $CRITERIA; do
  echo "== $c"
  tr '\r' '\n' <"$W/$c.log" | grep -E '^(iteration|after the removal)' || tail -5 "$W/$c.log"
done | tee "$OUT/summary.txt"
tar -cJf "$OUT/results.tar.xz" -C "$W" --exclude='*.safetensors' --exclude='*.png' --exclude='*.svg' --exclude=shards .
ls -la "$OUT"
