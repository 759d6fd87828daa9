#!/usr/bin/env bash
# Issue 13 on a GPU session (the `device` tool's machine): burn-wgpu training and inference img/s
# of two pare builds side by side with PyTorch CUDA on the same card, same models, batches and
# step counts — .devbin/pare-old.xz (burn/wgpu alone: no autotune) and .devbin/pare-new.xz
# (burn/wgpu + burn/autotune) — then one training run of the new build under cubecl's profiling
# logger (time per kernel) to $OUT/prof-new.log.xz, summed by bench/gpu/profile_sum.py (see
# BENCHMARKS.md). Carried (ignored by git): .gl (Vulkan loader debs), .devbin.
set -u
OUT=${OUT:-/tmp/pare-gpu-out}
mkdir -p "$OUT"
source bench/gpu/device-env.sh
for b in old new; do unpack_pare .devbin/pare-$b.xz /tmp/pare-$b; done
sha256sum /tmp/pare-old /tmp/pare-new
for cfg in resnet56:64 vgg16:64 resnet56:256; do
  model=${cfg%:*} batch=${cfg#*:}
  timeout 60 python3 bench/pytorch_bench.py "$model" "$batch" 20 cuda 2>&1 | tail -1 >>"$OUT/bench.jsonl"
  for b in old new; do
    timeout 120 /tmp/pare-$b bench train --model "$model" --batch "$batch" --device gpu --steps 20 2>&1 | tail -1 \
      | sed "s/^{/{\"build\":\"$b\",/" >>"$OUT/bench.jsonl"
  done
done
printf '[profiling]\nlogger = { level = "basic", file = "/tmp/prof.log" }\n' >cubecl.toml
timeout 120 /tmp/pare-new bench train --model resnet56 --batch 64 --device gpu --steps 6 >"$OUT/prof-bench.txt" 2>&1
rm -f cubecl.toml
xz -T0 -c /tmp/prof.log >"$OUT/prof-new.log.xz"
cat "$OUT/bench.jsonl" "$OUT/prof-bench.txt"
