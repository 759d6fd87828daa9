#!/usr/bin/env bash
# Needs a CUDA GPU with PyTorch (no Rust toolchain). Trains
# the paper's three Flowers-102 models at 64×64 from scratch, side by side on the one GPU, with
# bench/gpu/train_flowers.py, each within BUDGET_S: ResNet-50 and ResNet-18 (ImageNet stems) at
# lr 0.1, VGG-16-BN at 0.05. VGG-16 and ResNet-18 shards land in $OUT (under 64 MiB);
# ResNet-50's wait in /tmp/keep, to be collected afterwards (`cp /tmp/keep/* $OUT/`).
# Inputs beside the checkout (ignored by git): .flowers = jpg/ imagelabels.mat setid.mat from
# ../shared/data/flowers102-64, and arch/{resnet50,resnet18,vgg16}-arch.json (the `pare.arch`
# metadata of a `pare train --model M --data … --input-size 64 --max-steps 1` checkpoint).
# Afterwards, where pare runs: python3 bench/gpu/merge_shards.py M.safetensors M-*.safetensors
set -u
OUT=${OUT:-/tmp/pare-gpu-out}
BUDGET_S=${BUDGET_S:-330}
CAP=${CAP:-300}
mkdir -p "$OUT" /tmp/keep
nvidia-smi -L
export PYTHONUNBUFFERED=1
python3 bench/gpu/train_flowers.py .flowers .flowers/arch/resnet50-arch.json /tmp/keep resnet50 "$BUDGET_S" 0.1 "$CAP" \
  >/tmp/keep/resnet50.log 2>&1 &
python3 bench/gpu/train_flowers.py .flowers .flowers/arch/resnet18-arch.json "$OUT" resnet18 "$BUDGET_S" 0.1 "$CAP" \
  >/tmp/resnet18.log 2>&1 &
python3 bench/gpu/train_flowers.py .flowers .flowers/arch/vgg16-arch.json "$OUT" vgg16 "$BUDGET_S" 0.05 "$CAP" \
  >/tmp/vgg16.log 2>&1 &
wait
cat /tmp/keep/resnet50.log /tmp/resnet18.log /tmp/vgg16.log | tee "$OUT/train.log"
ls -la "$OUT" /tmp/keep
