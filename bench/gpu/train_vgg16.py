"""Trains pare's VGG-16-BN (host/src/model/zoo.rs: 13 conv+BN+ReLU, 5 max pools, one linear
layer, pare's input normalisation) on CIFAR-10 with PyTorch CUDA, within a wall-clock budget, and
writes the weights under pare's tensor names (`features.{3i}` conv, `features.{3i+1}` BN,
`classifier`) as safetensors shards of at most 15 MB.
`bench/gpu/merge_shards.py` joins them where pare runs; pare then loads them with `--model vgg16
--weights`.

A starting point for the paper's VGG-16 table, like the pretrained ResNets: pruning and
fine-tuning stay pare's.

Input: TRAIN_JPG, a 250×200 mosaic of the 50,000 training images (32×32 tiles aligned to JPEG's
8×8 blocks, quality 95, 4:4:4; made by bench/gpu/pack_cifar.py so the set is small to copy,
34.7 MB), TRAIN_LABELS (50,000 bytes) and TEST_BIN (CIFAR binary records, test_lossless.bin).
Usage: python train_vgg16.py TRAIN_JPG TRAIN_LABELS TEST_BIN OUT_DIR BUDGET_S
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

# The benchmark's VGG-16-BN: the same layers as pare's zoo (bench/pytorch_bench.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pytorch_bench import vgg16  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from budget_train import train_to_budget  # noqa: E402
from pare_torch import write_shards  # noqa: E402

MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2470, 0.2435, 0.2616]


def pare_names(model):
    """State dict under pare's names: the i-th conv is features.{3i}, its BN features.{3i+1}."""
    out, i = {}, 0
    for m in model:
        if isinstance(m, nn.Conv2d):
            conv = m
        elif isinstance(m, nn.BatchNorm2d):
            out[f"features.{3 * i}.weight"] = conv.weight
            for t in ("weight", "bias", "running_mean", "running_var"):
                out[f"features.{3 * i + 1}.{t}"] = getattr(m, t)
            i += 1
        elif isinstance(m, nn.Linear):
            out["classifier.weight"], out["classifier.bias"] = m.weight, m.bias
    return {k: v.detach().float().cpu().contiguous() for k, v in out.items()}


def main():
    train_jpg, train_labels, test_bin, out_dir, budget = sys.argv[1:6]
    budget = float(budget)
    t0 = time.time()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # cpu: smoke test only
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    mosaic = np.asarray(Image.open(train_jpg).convert("RGB"))
    rows, cols = mosaic.shape[0] // 32, mosaic.shape[1] // 32
    x = mosaic.reshape(rows, 32, cols, 32, 3).transpose(0, 2, 4, 1, 3).reshape(rows * cols, 3, 32, 32)
    y = np.fromfile(train_labels, dtype=np.uint8).astype(np.int64)
    test = np.fromfile(test_bin, dtype=np.uint8).reshape(-1, 3073)
    xt, yt = test[:, 1:].reshape(-1, 3, 32, 32), test[:, 0].astype(np.int64)
    mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device=dev).view(1, 3, 1, 1) * 255
    X, Y = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
    XT, YT = torch.from_numpy(np.ascontiguousarray(xt)).to(dev), torch.from_numpy(yt).to(dev)
    n = X.shape[0]

    model = vgg16().to(dev).to(memory_format=torch.channels_last)
    batch, peak, wd = 256, 0.1, 5e-4
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0}],
                          lr=peak, momentum=0.9, nesterov=True)

    def norm(u8):
        return ((u8.float() - mean) / std).contiguous(memory_format=torch.channels_last)

    def augment(xb):
        # Random 32×32 crop of the zero-padded (4 px) image, and a horizontal flip half the time.
        b = xb.shape[0]
        p = F.pad(xb, (4, 4, 4, 4))
        dy, dx = torch.randint(0, 9, (b,), device=dev), torch.randint(0, 9, (b,), device=dev)
        ar = torch.arange(32, device=dev)
        ih = (dy[:, None] + ar)[:, None, :, None]
        iw = (dx[:, None] + ar)[:, None, None, :]
        flip = torch.rand(b, device=dev) < 0.5
        iw = torch.where(flip[:, None, None, None], 2 * dx[:, None, None, None] + 31 - iw, iw)
        iw = iw.expand(b, 1, 32, 32)
        out = p.gather(2, ih.expand(b, 3, 32, p.shape[3]))
        return out.gather(3, iw.expand(b, 3, 32, 32))

    def evaluate():
        model.eval()
        correct = 0
        with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16):
            for i in range(0, XT.shape[0], 1000):
                correct += (model(norm(XT[i:i + 1000])).argmax(1) == YT[i:i + 1000]).sum().item()
        model.train()
        return 100.0 * correct / XT.shape[0]

    def epoch(lr_at):
        perm = torch.randperm(n, device=dev)
        steps = n // batch
        for s in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(s / steps)
            idx = perm[s * batch:(s + 1) * batch]
            with torch.autocast(dev.type, torch.bfloat16):
                loss = F.cross_entropy(model(norm(augment(X[idx]))), Y[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return loss.item()

    log, epochs = train_to_budget(
        epoch, evaluate, peak, budget, t0, cap=150, margin_s=15, slack=1.03, warm_div=10, eval_every=10,
        test_key="test_lossless",
        say_plan=lambda t, l, n: print(f"epoch 2: {t:.1f} s, loss {l:.3f}; {n} more epochs in the budget", flush=True),
        say_eval=lambda e, l, a, t: print(f"epoch {e}: loss {l:.3f}, test_lossless {a:.2f} %, {t:.0f} s", flush=True))
    acc = evaluate()
    write_shards(f"{out_dir}/vgg16", pare_names(model), {})
    summary = {"test_lossless": acc, "epochs": epochs, "batch": batch, "peak_lr": peak, "weight_decay": wd,
               "label_smoothing": 0.1, "wall_s": time.time() - t0, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
               "torch": torch.__version__, "log": log}
    with open(f"{out_dir}/vgg16-train.json", "w") as f:
        json.dump(summary, f)
    print(f"VGG-16-BN: {acc:.2f} % on test_lossless after {epochs} epochs, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
