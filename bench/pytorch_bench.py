"""The same training-step and inference benchmark as `pare bench train`, in PyTorch on the CPU
(two threads, like the CI machine) or, with DEVICE `cuda`, on an NVIDIA GPU.

Models are built exactly like pare's zoo: VGG-16-BN for CIFAR (13 conv+BN+ReLU, 5 max pools,
one linear layer) and the CIFAR ResNets with option-A shortcuts. MODEL may also be a pare
checkpoint (`.safetensors` with the `pare.arch` metadata, e.g. a pruned network): its
architecture is then built node by node, so both frameworks train the same pruned shapes.
Usage: python pytorch_bench.py MODEL BATCH STEPS [DEVICE] [CONFIG]  (DEVICE: cpu, the default, or
cuda). CONFIG is how a user would tune PyTorch: `fp32` (the default: float32, NCHW),
`channels_last` (float32, NHWC memory format: PyTorch's advice for CNNs on CPU), `bf16`
(channels-last plus bfloat16 autocast: products in bf16 where the CPU has AVX-512 BF16 or AMX,
weights, optimiser and batch norm in float32), `compile` (`bf16` under torch.compile).
"""
import json
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def vgg16(classes=10):
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, classes))


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if (stride != 1 or cin != planes) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class ResNetCifar(nn.Module):
    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            for i in range(n):
                blocks.append(Block(cin, planes, 2 if stage > 0 and i == 0 else 1))
                cin = planes
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


# Older checkpoints' node names (serde aliases in host/src/model/arch.rs).
ALIASES = {"Linear": "Dense", "Place": "ChannelPlace"}


class ArchNet(nn.Module):
    """pare's architecture-as-data (host/src/model/arch.rs), interpreted node by node."""

    def __init__(self, arch):
        super().__init__()
        self.nodes = [{ALIASES.get(k, k): v for k, v in node.items()} for node in arch["nodes"]]
        shapes, mods = [], nn.ModuleList()
        src = lambda s: arch["input"]["c"] if s == "Input" else shapes[s["Node"]]
        for node in self.nodes:
            (kind, n), = node.items()
            if kind == "Conv":
                cin = src(n["input"])
                mods.append(nn.Sequential(nn.Conv2d(cin, n["out"], n["kernel"], n["stride"], n["padding"], bias=False),
                                          nn.BatchNorm2d(n["out"])))
                shapes.append(n["out"])
            elif kind == "Dense":
                mods.append(nn.Linear(src(n["input"]), n["out"]))
                shapes.append(n["out"])
            elif kind == "ChannelPlace":
                mods.append(nn.Identity())
                shapes.append(n["out"])
            elif kind in ("MaxPool", "AvgPool", "GlobalAvgPool"):
                mods.append(nn.Identity())
                shapes.append(src(n["input"]))
            elif kind == "Add":
                mods.append(nn.Identity())
                shapes.append(src(n["a"]))
            else:
                raise ValueError(f"unknown node kind {kind}")
        self.mods = mods
        # Option-A placement as an index map: input channel i goes to output channel channels[i].
        for i, node in enumerate(self.nodes):
            if "ChannelPlace" in node:
                ch = node["ChannelPlace"]["channels"]
                self.register_buffer(f"place{i}_src", torch.tensor([j for j, c in enumerate(ch) if c is not None], dtype=torch.long))
                self.register_buffer(f"place{i}_dst", torch.tensor([c for c in ch if c is not None], dtype=torch.long))

    def forward(self, x):
        outs = []
        get = lambda s: x if s == "Input" else outs[s["Node"]]
        for i, (node, mod) in enumerate(zip(self.nodes, self.mods)):
            (kind, n), = node.items()
            if kind == "Conv":
                y = mod(get(n["input"]))
                y = F.relu(y) if n["relu"] else y
            elif kind == "MaxPool":
                y = F.max_pool2d(get(n["input"]), n["kernel"], n["stride"])
            elif kind == "AvgPool":
                y = F.avg_pool2d(get(n["input"]), n["kernel"], n["stride"])
            elif kind == "GlobalAvgPool":
                y = F.adaptive_avg_pool2d(get(n["input"]), 1)
            elif kind == "Add":
                y = get(n["a"]) + get(n["b"])
                y = F.relu(y) if n["relu"] else y
            elif kind == "ChannelPlace":
                z = get(n["input"])[:, :, :: n["stride"], :: n["stride"]]
                y = z.new_zeros(z.shape[0], n["out"], z.shape[2], z.shape[3])
                y[:, getattr(self, f"place{i}_dst")] = z[:, getattr(self, f"place{i}_src")]
            elif kind == "Dense":
                y = mod(get(n["input"]).flatten(1))
            outs.append(y)
        return outs[-1]


def from_checkpoint(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return ArchNet(json.loads(header["__metadata__"]["pare.arch"]))


def macs(model, shape=(1, 3, 32, 32)):
    model = model.cpu()
    """Multiply-accumulates of convolutions and linear layers, counted with forward hooks."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        elif isinstance(m, nn.Linear):
            total[0] += m.in_features * m.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(shape))
    for h in hs:
        h.remove()
    return total[0]


CONFIGS = ("fp32", "channels_last", "bf16", "compile")


def main():
    name, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dev = torch.device(sys.argv[4] if len(sys.argv) > 4 else "cpu")
    config = sys.argv[5] if len(sys.argv) > 5 else "fp32"
    if config not in CONFIGS:
        sys.exit(f"CONFIG must be one of {', '.join(CONFIGS)}, not {config!r}")
    channels_last = config != "fp32"
    bf16 = config in ("bf16", "compile")
    autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if dev.type == "cpu":
        torch.set_num_threads(2)
    # Like pare's bench, each step ends when its result is on hand (pare reads a parameter back).
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    if name.endswith(".safetensors"):
        model = from_checkpoint(name)
    elif name == "vgg16":
        model = vgg16()
    else:
        model = ResNetCifar(int(name.removeprefix("resnet")))
    model = model.to(dev, memory_format=fmt)
    count = macs(model.eval())
    model = model.to(dev, memory_format=fmt)
    run = torch.compile(model) if config == "compile" else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    y = (torch.arange(batch) % 10).to(dev)

    def step():
        x = torch.randn(batch, 3, 32, 32, device=dev).to(memory_format=fmt)
        opt.zero_grad()
        with autocast():
            loss = F.cross_entropy(run(x), y)
        loss.backward()
        opt.step()
        sync()

    model.train()
    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    train = steps * batch / (time.perf_counter() - t)
    model.eval()
    x = torch.randn(batch, 3, 32, 32, device=dev).to(memory_format=fmt)
    with torch.no_grad(), autocast():
        run(x)
        run(x)
        sync()
        t = time.perf_counter()
        for _ in range(steps):
            run(x)
            sync()
        infer = steps * batch / (time.perf_counter() - t)
    where = "" if dev.type == "cpu" else f" on {torch.cuda.get_device_name(dev)}"
    print(f"pytorch {torch.__version__} {config}{where} {name} batch {batch}: train {train:.1f} img/s, inference {infer:.1f} img/s")
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "config": config, "model": name, "batch": batch,
                      "train_img_s": train, "infer_img_s": infer, "macs": count, "threads": torch.get_num_threads(),
                      "device": dev.type}))


if __name__ == "__main__":
    main()
