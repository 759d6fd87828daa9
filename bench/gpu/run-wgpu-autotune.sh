#!/usr/bin/env bash
# Needs a CUDA GPU with PyTorch and NVIDIA's Vulkan driver (no Rust toolchain: the pare builds
# come prebuilt in .devbin). burn-wgpu training and inference img/s
# of several pare builds side by side with PyTorch CUDA on the same card, same models, batches and
# step counts, then one training run of the last build under cubecl's profiling logger (time per
# kernel) to $OUT/prof-<build>.log.xz, summed by bench/gpu/profile_sum.py (see BENCHMARKS.md).
# BUILDS names the binaries .devbin/pare-<build>.xz; the default compares the
# autotune fix: old (burn/wgpu alone) and new (burn/wgpu + burn/autotune). The fusion comparison
# ran BUILDS="new fusion" (new + burn/fusion). With .devbin/resnet20.safetensors and
# .cifar/test_lossless.bin present, each build also evaluates that model on the GPU (the builds
# must agree). Inputs beside the checkout (ignored by git): .gl (Vulkan loader debs, see
# device-env.sh), .devbin, .cifar.
set -u
OUT=${OUT:-/tmp/pare-gpu-out}
BUILDS=${BUILDS:-old new}
mkdir -p "$OUT"
source bench/gpu/device-env.sh
for b in $BUILDS; do unpack_pare .devbin/pare-$b.xz /tmp/pare-$b; sha256sum /tmp/pare-$b; done
if [ -f .devbin/resnet20.safetensors ] && [ -f .cifar/test_lossless.bin ]; then
  for b in $BUILDS; do
    echo "== eval, build $b"
    timeout 120 /tmp/pare-$b eval --model resnet20 --weights .devbin/resnet20.safetensors --data .cifar \
      --split test_lossless --device gpu 2>&1 | tail -1
  done
fi
for cfg in resnet56:64 vgg16:64 resnet56:256; do
  model=${cfg%:*} batch=${cfg#*:}
  timeout 60 python3 bench/pytorch_bench.py "$model" "$batch" 20 cuda 2>&1 | tail -1 >>"$OUT/bench.jsonl"
  for b in $BUILDS; do
    timeout 120 /tmp/pare-$b bench train --model "$model" --batch "$batch" --device gpu --steps 20 2>&1 | tail -1 \
      | sed "s/^{/{\"build\":\"$b\",/" >>"$OUT/bench.jsonl"
  done
done
last=${BUILDS##* }
printf '[profiling]\nlogger = { level = "basic", file = "/tmp/prof.log" }\n' >cubecl.toml
timeout 120 /tmp/pare-$last bench train --model resnet56 --batch 64 --device gpu --steps 6 >"$OUT/prof-bench.txt" 2>&1
rm -f cubecl.toml
xz -T0 -c /tmp/prof.log >"$OUT/prof-$last.log.xz"
cat "$OUT/bench.jsonl" "$OUT/prof-bench.txt"
