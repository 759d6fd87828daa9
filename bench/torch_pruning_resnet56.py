"""Torch-Pruning 1.6.1 on the pretrained CIFAR-10 ResNet-56, the baseline side of
bench/vs-torch-pruning.sh.

GroupTaylorImportance, progressive one-shot pruning (5 steps, no fine-tuning in between, Taylor
scores from one batch of 128 training images per step), the final linear layer ignored, to at
least --speedup times fewer MACs (the pruning ratio is bisected on copies of the model), then SGD
(lr 0.01 cosine over the remaining wall-clock time, momentum 0.9, weight decay 5e-4, batch 128,
4-pixel-pad random crop + horizontal flip) over all training images until the budget, counted
from the start of the pruning, runs out. Threads: 2 (TP_THREADS overrides).

Option-A shortcuts (x[:, :, ::2, ::2] zero-padded by planes/4 channels on each side) are frozen
1x1 stride-2 convs with weight[i + planes/4, i] = 1: output-identical, and Torch-Pruning then
groups each stage's residual stream on its own (it traces F.pad as element-wise and would merge
the three streams into one wrongly indexed group). Their MACs and weights are not counted in the
figures reported (pare counts convs and the linear layer of the real model, 125.49 M MACs and
853 k parameters unpruned); tp.utils.count_ops_and_params checks the MACs (its per-layer figures
for the same layers) and its total with BatchNorm, ReLU and the shortcuts is printed too.

Usage: python torch_pruning_resnet56.py --weights resnet56.safetensors --data CIFAR_DIR
           --budget-s SECONDS --out DIR [--smoke]
--smoke: 512 training images, 256 test images, a 60 s budget (checks the script, not results).
Writes DIR/result.json and DIR/pruned.pt; prints the result as one JSON line last.
"""
import argparse
import copy
import importlib.metadata
import json
import math
import os
import pathlib
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_pruning as tp

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- weights and data


def load_safetensors(path):
    """The safetensors format by hand (8-byte header length, JSON header, raw little-endian data)."""
    raw = pathlib.Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    dtypes = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64, "I32": torch.int32}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        buf = bytearray(raw[8 + n + a : 8 + n + b])
        t = torch.frombuffer(buf, dtype=dtypes[meta["dtype"]]) if b > a else torch.empty(0, dtype=dtypes[meta["dtype"]])
        out[name] = t.reshape(meta["shape"]).clone()
    return out


def load_cifar(folder, files, limit=None):
    """CIFAR-10 binary records (label byte, then 3x1024 planar RGB bytes) as uint8 images and labels."""
    parts = []
    for f in files:
        raw = bytearray((pathlib.Path(folder) / f).read_bytes())
        parts.append(torch.frombuffer(raw, dtype=torch.uint8).view(-1, 3073))
    rec = torch.cat(parts)
    if limit is not None:
        rec = rec[:limit]
    return rec[:, 1:].reshape(-1, 3, 32, 32).contiguous(), rec[:, 0].long()


def normalise(x_u8):
    return (x_u8.float() / 255.0 - MEAN) / STD


def augment(x_u8, gen):
    """4-pixel zero-padded random crop and horizontal flip, per image."""
    n = x_u8.shape[0]
    padded = F.pad(x_u8, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=gen)
    dy = torch.randint(0, 9, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x_u8)
    for i in range(n):
        c = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        out[i] = c.flip(-1) if flip[i] else c
    return out


# ---------------------------------------------------------------- model


class Block(nn.Module):
    def __init__(self, cin, planes, stride, pad_shortcut=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = None
        self.shortcut = None
        if stride != 1 or cin != planes:
            if pad_shortcut:  # the original option A, only to check the conv form against
                self.pad = planes // 4
            else:
                sc = nn.Conv2d(cin, planes, 1, stride, 0, bias=False)
                w = torch.zeros(planes, cin, 1, 1)
                for i in range(cin):
                    w[i + planes // 4, i, 0, 0] = 1.0
                sc.weight.data.copy_(w)
                sc.weight.requires_grad_(False)
                self.shortcut = sc

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            short = self.shortcut(x)
        elif self.pad is not None:
            short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        else:
            short = x
        return F.relu(out + short)


class ResNetCifar(nn.Module):
    """akamaster/pytorch_resnet_cifar10 naming: conv1, bn1, layer{1,2,3}.{i}.*, linear."""

    def __init__(self, depth=56, classes=10, pad_shortcut=False):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for stage, planes in enumerate([16, 32, 64]):
            blocks = []
            for i in range(n):
                blocks.append(Block(cin, planes, 2 if stage > 0 and i == 0 else 1, pad_shortcut))
                cin = planes
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def shortcuts(model):
    return [m.shortcut for m in model.modules() if isinstance(m, Block) and m.shortcut is not None]


def freeze_shortcuts(model):
    # Torch-Pruning replaces a pruned weight by a new nn.Parameter (requires_grad True): refreeze.
    for sc in shortcuts(model):
        sc.weight.requires_grad_(False)
        sc.weight.grad = None


def build(weights, pad_shortcut=False):
    model = ResNetCifar(56, pad_shortcut=pad_shortcut)
    sd = {k: v for k, v in load_safetensors(weights).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    bad = [k for k in missing if not k.endswith("shortcut.weight")]
    if bad or unexpected:
        raise SystemExit(f"weights do not fit: missing {bad}, unexpected {unexpected}")
    return model


def macs_params(model):
    """MACs and parameters as pare counts them: convs and linear layers of the real model (the
    frozen shortcut convs, a stand-in for option A's pad, are left out)."""
    skip = {id(m) for m in shortcuts(model)}
    macs = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            macs[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            macs[0] += m.in_features * m.out_features * (out.numel() // m.out_features)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in skip]
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    model.train(was)
    for h in hs:
        h.remove()
    params = sum(p.numel() for name, p in model.named_parameters() if "shortcut" not in name)
    return macs[0], params


def tp_macs(model, example):
    """tp.utils.count_ops_and_params's figure restricted to what pare counts (convs and linear
    layers less the frozen shortcuts; it adds the linear bias's 10 adds), and its full total
    (BatchNorm, ReLU, pooling and the shortcut convs too)."""
    ops, _, layer_ops, _ = tp.utils.count_ops_and_params(model, example_inputs=example, layer_wise=True)
    skip = {id(m) for m in shortcuts(model)}
    macs = sum(layer_ops[m] or 0 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in skip)
    return macs, ops


@torch.no_grad()
def evaluate(model, x_u8, y, batch=256):
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        correct += (model(normalise(x_u8[i : i + batch])).argmax(1) == y[i : i + batch]).sum().item()
    return correct / max(1, len(y))


# ---------------------------------------------------------------- pruning


def prune(base, ratio, taylor_batches, example, steps, global_pruning):
    """`steps` progressive Torch-Pruning steps on a copy of `base` to `ratio`; no fine-tuning."""
    model = copy.deepcopy(base)
    model.eval()
    pruner = tp.pruner.BasePruner(
        model,
        example,
        importance=tp.importance.GroupTaylorImportance(),
        pruning_ratio=ratio,
        iterative_steps=steps,
        global_pruning=global_pruning,
        ignored_layers=[model.linear],
    )
    for xb, yb in taylor_batches:
        model.zero_grad()
        F.cross_entropy(model(normalise(xb)), yb).backward()
        # The frozen shortcuts have no gradient, which GroupTaylorImportance cannot read: a zero
        # one adds nothing to a channel's score (the group mean is normalised away afterwards).
        for sc in shortcuts(model):
            sc.weight.grad = torch.zeros_like(sc.weight)
        pruner.step()
        freeze_shortcuts(model)
    model.zero_grad()
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--budget-s", type=float, default=3000.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--speedup", type=float, default=2.6, help="MACs ratio to reach at least")
    ap.add_argument("--steps", type=int, default=5, help="progressive pruning steps")
    ap.add_argument("--local", action="store_true", help="uniform per-layer ratio instead of global ranking")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    smoke = a.smoke or os.environ.get("TP_SMOKE") == "1"
    torch.set_num_threads(int(os.environ.get("TP_THREADS", "2")))
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = 60.0 if smoke else a.budget_s
    n_train, n_test = (512, 256) if smoke else (None, None)
    global_pruning = not a.local

    log(f"torch {torch.__version__}, torch-pruning {importlib.metadata.version('torch-pruning')}, "
        f"{torch.get_num_threads()} threads{', SMOKE' if smoke else ''}")
    xtr, ytr = load_cifar(a.data, [f"data_batch_{i}.bin" for i in range(1, 6)], n_train)
    xll, yll = load_cifar(a.data, ["test_lossless.bin"], n_test)
    xte, yte = load_cifar(a.data, ["test_batch.bin"], n_test)
    log(f"data: {len(ytr)} train, {len(yll)} test_lossless, {len(yte)} test_batch")

    # The conv form of option A must be output-identical to the pad form.
    model = build(a.weights)
    ref = build(a.weights, pad_shortcut=True)
    model.eval(), ref.eval()
    with torch.no_grad():
        probe = normalise(xll[:32])
        diff = (model(probe) - ref(probe)).abs().max().item()
    del ref
    log(f"option-A shortcut as frozen 1x1 conv: max |logit difference| vs F.pad form {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit("the conv shortcut is not output-identical to option A")

    example = torch.zeros(1, 3, 32, 32)
    base_macs, base_params = macs_params(model)
    base_tp_macs, base_ops = tp_macs(model, example)
    t = time.perf_counter()
    base_ll = evaluate(model, xll, yll)
    eval_reserve = time.perf_counter() - t  # the final test_lossless evaluation must fit the budget
    base_te = evaluate(model, xte, yte)
    print(f"unpruned: top-1 {100 * base_ll:.2f} % on test_lossless ({len(yll)} images; expected 92.93 % on all 1,668), "
          f"{100 * base_te:.2f} % on test_batch ({len(yte)}); {base_macs / 1e6:.2f} M MACs, {base_params} params "
          f"(tp.utils.count_ops_and_params: {base_tp_macs / 1e6:.2f} M conv+linear MACs, {base_ops / 1e6:.2f} M ops in all)", flush=True)
    if not smoke and abs(100 * base_ll - 92.93) > 0.5:
        raise SystemExit("unpruned accuracy is off: weights, data or normalisation do not load right")

    # ---- the clock starts: progressive pruning, the ratio bisected on copies
    start = time.perf_counter()
    deadline = start + budget
    idx = torch.randperm(len(ytr), generator=gen)
    taylor = []
    for s in range(a.steps):
        j = idx[(torch.arange(128) + 128 * s) % len(ytr)]
        taylor.append((xtr[j], ytr[j]))

    def trial(r):
        t0 = time.perf_counter()
        m = prune(model, r, taylor, example, a.steps, global_pruning)
        macs, params = macs_params(m)
        log(f"  pruning_ratio {r:.4f}: {macs / 1e6:.2f} M MACs, {base_macs / macs:.3f}x ({time.perf_counter() - t0:.1f} s)")
        return m, macs, params

    lo, hi = 0.0, 0.5
    best = None
    while True:  # first a ratio that reaches the target
        m, macs, params = trial(hi)
        if base_macs / macs >= a.speedup:
            best = (hi, m, macs, params)
            break
        lo, hi = hi, min(0.95, hi + 0.2)
        if lo >= 0.95:
            raise SystemExit("no pruning ratio reaches the MACs target")
    for _ in range(5):  # then the smallest that still does (resolution ~0.01)
        mid = (lo + hi) / 2
        m, macs, params = trial(mid)
        if base_macs / macs >= a.speedup:
            hi, best = mid, (mid, m, macs, params)
        else:
            lo = mid
    ratio, model, macs, params = best
    del m
    tp_m, ops = tp_macs(model, example)
    if abs(tp_m - macs) > 100:
        raise SystemExit(f"MACs disagree: {macs} counted here, {tp_m} by tp.utils.count_ops_and_params")
    pruned_s = time.perf_counter() - start
    channels = {n: mod.out_channels for n, mod in model.named_modules() if isinstance(mod, nn.Conv2d) and "shortcut" not in n}
    print(f"pruned: pruning_ratio {ratio:.4f} in {a.steps} steps ({'global' if global_pruning else 'per-layer'}), "
          f"{base_macs / 1e6:.2f} M -> {macs / 1e6:.2f} M MACs ({base_macs / macs:.3f}x), {base_params} -> {params} params; "
          f"tp.utils.count_ops_and_params: {base_tp_macs / 1e6:.2f} M -> {tp_m / 1e6:.2f} M conv+linear MACs "
          f"({base_tp_macs / tp_m:.3f}x), {base_ops / 1e6:.2f} M -> {ops / 1e6:.2f} M ops in all ({base_ops / ops:.3f}x); "
          f"{pruned_s:.1f} s", flush=True)
    log("kept channels: " + " ".join(f"{n}={c}" for n, c in channels.items()))

    # ---- fine-tuning until the budget (less the final evaluation) runs out
    params_ft = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params_ft, lr=0.01, momentum=0.9, weight_decay=5e-4)
    ft_start = time.perf_counter()
    ft_end = max(ft_start, deadline - eval_reserve)
    steps, epoch, running = 0, 0, 0.0
    done = False
    while not done:
        model.train()
        perm = torch.randperm(len(ytr), generator=gen)
        for i in range(0, len(ytr) - 127, 128):
            now = time.perf_counter()
            if now >= ft_end and not (smoke and steps < 2):
                done = True
                break
            frac = min(1.0, (now - ft_start) / max(1e-9, ft_end - ft_start))
            for g in opt.param_groups:
                g["lr"] = 0.01 * 0.5 * (1.0 + math.cos(math.pi * frac))
            j = perm[i : i + 128]
            loss = F.cross_entropy(model(normalise(augment(xtr[j], gen))), ytr[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            running = 0.98 * running + 0.02 * loss.item() if steps > 1 else loss.item()
            if steps % 50 == 0:
                log(f"  step {steps} (epoch {epoch}): loss {running:.3f}, lr {opt.param_groups[0]['lr']:.5f}, "
                    f"{time.perf_counter() - start:.0f}/{budget:.0f} s")
        epoch += 1
    ft_s = time.perf_counter() - ft_start
    top1_ll = evaluate(model, xll, yll)
    seconds = time.perf_counter() - start
    top1_te = evaluate(model, xte, yte)
    log(f"fine-tuned {steps} steps ({steps * 128 / len(ytr):.2f} epochs) in {ft_s:.0f} s")
    torch.save(model, out / "pruned.pt")
    result = {
        "method": f"Torch-Pruning {importlib.metadata.version('torch-pruning')} GroupTaylor",
        "smoke": smoke,
        "unpruned": {"macs": base_macs, "params": base_params, "top1_lossless": base_ll, "top1_test": base_te,
                     "tp_macs": base_tp_macs, "tp_ops": base_ops},
        "pruning_ratio": ratio,
        "global_pruning": global_pruning,
        "macs": macs,
        "params": params,
        "tp_macs": tp_m,
        "tp_ops": ops,
        "channels": channels,
        "top1_lossless": top1_ll,
        "top1_test": top1_te,
        "finetune_steps": steps,
        "prune_seconds": pruned_s,
        "finetune_seconds": ft_s,
        "seconds": seconds,
        "budget_seconds": budget,
        "threads": torch.get_num_threads(),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(f"final: top-1 {100 * top1_ll:.2f} % test_lossless, {100 * top1_te:.2f} % test_batch; "
          f"{macs / 1e6:.2f} M MACs; {seconds:.0f} s of a {budget:.0f} s budget", flush=True)
    print(json.dumps({k: v for k, v in result.items() if k != "channels"}))


if __name__ == "__main__":
    main()
