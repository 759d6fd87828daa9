"""Trains a pare model on Flowers-102 (official layout: jpg/, imagelabels.mat, setid.mat) with
PyTorch CUDA within a wall-clock budget, from scratch (no ImageNet weights exist here), and writes
it as a pare checkpoint (the architecture from ARCH_JSON in the `pare.arch` metadata, tensors
under pare's names) in shards of at most 15 MB, conv and linear weights as F16 so that three
models take under 64 MiB, BatchNorm in F32.
`bench/gpu/merge_shards.py` joins them (back to F32) where pare runs.

The recipe mirrors `pare train` (host/src/data/batch.rs): train+val (2,040 images), random-resized
crops of 25–100 % of the area at aspect 3/4–4/3 (log-uniform), bilinear, flip half the time;
ImageNet normalisation (the arch's mean/std); SGD Nesterov 0.9, weight decay 5e-4 on weights,
label smoothing 0.1, linear warm-up then cosine; bf16 autocast. Test: the 6,149 test images.

ARCH_JSON: the `pare.arch` metadata of any checkpoint of the model (e.g. `pare train --model
resnet50 --data flowers102-64 --input-size 64 --max-steps 1`).
Usage: python train_flowers.py DATA ARCH_JSON OUT_DIR TAG BUDGET_S LR [EPOCH_CAP]
"""
import json
import math
import os
import sys
import time

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from budget_train import train_to_budget  # noqa: E402
from pare_torch import PareNet, write_shards  # noqa: E402


def load(data, size):
    labels = scipy.io.loadmat(os.path.join(data, "imagelabels.mat"))["labels"].ravel().astype(np.int64) - 1
    sets = scipy.io.loadmat(os.path.join(data, "setid.mat"))
    ids = {k: sets[k].ravel().astype(np.int64) for k in ("trnid", "valid", "tstid")}
    need = sorted(set(np.concatenate(list(ids.values())).tolist()))
    imgs = {}
    for i in need:
        im = Image.open(os.path.join(data, "jpg", f"image_{i:05d}.jpg")).convert("RGB")
        w, h = im.size
        if (w, h) != (size, size):  # shorter side to `size`, centre crop (host/src/data/images.rs)
            s = size / min(w, h)
            im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
            w, h = im.size
            l, t = (w - size) // 2, (h - size) // 2
            im = im.crop((l, t, l + size, t + size))
        imgs[i] = np.asarray(im).transpose(2, 0, 1)

    def split(*keys):
        sel = np.concatenate([ids[k] for k in keys])
        return np.stack([imgs[i] for i in sel]), labels[sel - 1]

    return split("trnid", "valid"), split("tstid")


def main():
    data, arch_json, out_dir, tag, budget, lr = sys.argv[1:7]
    cap = int(sys.argv[7]) if len(sys.argv) > 7 else 300
    budget, peak = float(budget), float(lr)
    t0 = time.time()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # cpu: smoke test only
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    arch = json.load(open(arch_json))
    size = arch["input"]["h"]
    (x, y), (xt, yt) = load(data, size)
    print(f"{tag}: {len(x)} train+val, {len(xt)} test images, {time.time() - t0:.0f} s to decode", flush=True)
    X, Y = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
    XT, YT = torch.from_numpy(xt).to(dev), torch.from_numpy(yt).to(dev)
    mean = torch.tensor(arch["mean"], device=dev).view(1, 3, 1, 1) * 255
    std = torch.tensor(arch["std"], device=dev).view(1, 3, 1, 1) * 255
    n, batch, wd = X.shape[0], 64, 5e-4

    model = PareNet(arch).to(dev).to(memory_format=torch.channels_last)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0}],
                          lr=peak, momentum=0.9, nesterov=True)

    def norm(u8):
        return ((u8.float() - mean) / std).contiguous(memory_format=torch.channels_last)

    def augment(xb):
        # pare's random-resized crop as one affine grid per image (align_corners=False pixel
        # centres, border clamp): source x = x0 + (x + 0.5)·cw/w − 0.5.
        b = xb.shape[0]
        area = torch.empty(b, device=dev).uniform_(0.25, 1.0)
        ratio = torch.empty(b, device=dev).uniform_(math.log(0.75), math.log(4 / 3)).exp()
        cw = ((area * ratio).sqrt() * size).clamp(1, size)
        ch = ((area / ratio).sqrt() * size).clamp(1, size)
        x0 = torch.rand(b, device=dev) * (size - cw)
        y0 = torch.rand(b, device=dev) * (size - ch)
        flip = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0] = cw / size * flip
        theta[:, 0, 2] = (2 * x0 + cw) / size - 1
        theta[:, 1, 1] = ch / size
        theta[:, 1, 2] = (2 * y0 + ch) / size - 1
        grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
        return F.grid_sample(norm(xb), grid, mode="bilinear", padding_mode="border", align_corners=False)

    def evaluate(autocast=True):
        model.eval()
        correct = 0
        with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16, enabled=autocast):
            for i in range(0, XT.shape[0], 1024):
                correct += (model(norm(XT[i:i + 1024])).argmax(1) == YT[i:i + 1024]).sum().item()
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
                loss = F.cross_entropy(model(augment(X[idx]).contiguous(memory_format=torch.channels_last)),
                                       Y[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return loss.item()

    log, epochs = train_to_budget(
        epoch, evaluate, peak, budget, t0, cap=cap, margin_s=20, slack=1.05, warm_div=20, eval_every=25,
        test_key="test",
        say_plan=lambda t, l, n: print(f"{tag}: epoch 2 {t:.2f} s, loss {l:.3f}; {n} more epochs", flush=True),
        say_eval=lambda e, l, a, t: print(f"{tag}: epoch {e} loss {l:.3f} test {a:.2f} % {t:.0f} s", flush=True))
    acc = evaluate(autocast=False)
    tensors = model.pare_state()
    half = {k for k in tensors if k.endswith(".weight") and tensors[k].ndim > 1}
    meta = {"pare.arch": json.dumps(arch), "pare.epoch": str(epochs)}
    write_shards(f"{out_dir}/{tag}", tensors, meta, half)
    summary = {"model": tag, "test_f32": acc, "epochs": epochs, "batch": batch, "peak_lr": peak,
               "weight_decay": wd, "label_smoothing": 0.1, "wall_s": time.time() - t0,
               "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
               "torch": torch.__version__, "log": log}
    with open(f"{out_dir}/{tag}-train.json", "w") as f:
        json.dump(summary, f)
    print(f"{tag}: {acc:.2f} % on the 6,149 test images after {epochs} epochs, {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
