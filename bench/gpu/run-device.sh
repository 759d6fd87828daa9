#!/usr/bin/env bash
# One run on a machine with a CUDA GPU: needs PyTorch with CUDA and NVIDIA's Vulkan driver (for
# burn-wgpu), no Rust toolchain (pare comes prebuilt in .devbin). From the repo root:
#   1. VGG-16-BN on CIFAR-10 with PyTorch CUDA within TRAIN_BUDGET_S (bench/gpu/train_vgg16.py),
#      weights to $OUT as shards under pare's names;
#   2. training-step and inference img/s, pare on burn-wgpu (Vulkan) beside PyTorch CUDA on the
#      same card, same models, batches and step count (bench/pytorch_bench.py ... cuda), each pair
#      run back to back, JSON lines to $OUT/bench.jsonl.
# Inputs beside the checkout (ignored by git): .gl (Debian packages of the Vulkan/EGL loaders,
# see device-env.sh), .devbin (pare.xz: a stripped x86-64 release pare;
# pruned-resnet56.safetensors), .cifar (train_q95.jpg, train_labels.u8, test_lossless.bin:
# bench/gpu/pack_cifar.py).
set -u
OUT=${OUT:-/tmp/pare-gpu-out}
mkdir -p "$OUT"
TRAIN_BUDGET_S=${TRAIN_BUDGET_S:-300}
DEADLINE_S=${DEADLINE_S:-570}
source bench/gpu/device-env.sh
nvidia-smi -L
unpack_pare .devbin/pare.xz /tmp/pare
sha256sum /tmp/pare

if [ "$TRAIN_BUDGET_S" -gt 0 ]; then
  echo "== VGG-16-BN, PyTorch CUDA, budget ${TRAIN_BUDGET_S} s"
  timeout $((TRAIN_BUDGET_S + 60)) python3 bench/gpu/train_vgg16.py .cifar/train_q95.jpg .cifar/train_labels.u8 \
    .cifar/test_lossless.bin "$OUT" "$TRAIN_BUDGET_S"
fi

echo "== train/inference img/s: pare burn-wgpu vs PyTorch CUDA"
for cfg in resnet56:64 vgg16:64 .devbin/pruned-resnet56.safetensors:128 resnet56:256 vgg16:256; do
  model=${cfg%:*} batch=${cfg#*:}
  left=$((DEADLINE_S - SECONDS))
  [ "$left" -lt 20 ] && { echo "out of time before $cfg"; break; }
  t=$((left < 60 ? left : 60))
  timeout "$t" python3 bench/pytorch_bench.py "$model" "$batch" 20 cuda 2>&1 | tail -2 | tee -a /tmp/bench.log | tail -1 >>"$OUT/bench.jsonl"
  left=$((DEADLINE_S - SECONDS))
  t=$((left < 90 ? left : 90))
  [ "$t" -lt 10 ] && break
  timeout "$t" /tmp/pare bench train --model "$model" --batch "$batch" --device gpu --steps 20 2>&1 | tail -3 | tee -a /tmp/bench.log | tail -1 >>"$OUT/bench.jsonl"
done
cat /tmp/bench.log
