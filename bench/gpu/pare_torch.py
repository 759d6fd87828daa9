"""pare's architecture-as-data (the `pare.arch` JSON of a checkpoint's metadata) as a PyTorch
module, so a GPU can train a pare model and hand the weights back under pare's tensor names.

Every node of host/src/model/arch.rs: Conv (bias-free conv, BatchNorm eps 1e-5 momentum 0.1,
optional ReLU, symmetric `padding` or per-side `pads` [top, left, bottom, right]), MaxPool (−∞
padding, PyTorch's), AvgPool, GlobalAvgPool, Add (optional ReLU), ChannelPlace (option-A
shortcut) and Dense (the classifier on a (c, 1, 1) input).
"""
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


_ALIASES = {"Linear": "Dense", "Place": "ChannelPlace"}  # older checkpoints' names (serde aliases)


def _kind(node):
    ((kind, p),) = node.items()
    return _ALIASES.get(kind, kind), p


def _src(s):
    return -1 if s == "Input" else s["Node"]


class PareNet(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.arch = arch
        self.nodes = [_kind(n) for n in arch["nodes"]]
        self.layers = nn.ModuleDict()
        chans = []

        def ch(s):
            i = _src(s)
            return arch["input"]["c"] if i < 0 else chans[i]

        for i, (kind, p) in enumerate(self.nodes):
            if kind == "Conv":
                pad = 0 if p.get("pads") else p["padding"]
                self.layers[f"c{i}"] = nn.Conv2d(ch(p["input"]), p["out"], p["kernel"], p["stride"], pad, bias=False)
                self.layers[f"b{i}"] = nn.BatchNorm2d(p["out"], eps=1e-5, momentum=0.1)
                chans.append(p["out"])
            elif kind == "Dense":
                self.layers[f"d{i}"] = nn.Linear(ch(p["input"]), p["out"])
                chans.append(p["out"])
            elif kind == "Add":
                chans.append(ch(p["a"]))
            elif kind == "ChannelPlace":
                chans.append(p["out"])
            elif kind in ("MaxPool", "AvgPool", "GlobalAvgPool"):
                chans.append(ch(p["input"]))
            else:
                raise ValueError(f"unknown node {kind}")

    def forward(self, x):
        outs = []

        def get(s):
            i = _src(s)
            return x if i < 0 else outs[i]

        for i, (kind, p) in enumerate(self.nodes):
            if kind == "Conv":
                h = get(p["input"])
                if p.get("pads"):
                    t, l, b, r = p["pads"]
                    h = F.pad(h, (l, r, t, b))
                h = self.layers[f"b{i}"](self.layers[f"c{i}"](h))
                y = F.relu(h) if p["relu"] else h
            elif kind == "MaxPool":
                y = F.max_pool2d(get(p["input"]), p["kernel"], p["stride"], p.get("padding", 0))
            elif kind == "AvgPool":
                y = F.avg_pool2d(get(p["input"]), p["kernel"], p["stride"])
            elif kind == "GlobalAvgPool":
                y = get(p["input"]).mean((2, 3), keepdim=True)
            elif kind == "Add":
                y = get(p["a"]) + get(p["b"])
                y = F.relu(y) if p["relu"] else y
            elif kind == "ChannelPlace":
                h = get(p["input"])[:, :, ::p["stride"], ::p["stride"]]
                y = h.new_zeros(h.shape[0], p["out"], h.shape[2], h.shape[3])
                for src, dst in enumerate(p["channels"]):
                    if dst is not None:
                        y[:, dst] = h[:, src]
            else:  # Dense
                y = self.layers[f"d{i}"](torch.flatten(get(p["input"]), 1))
            outs.append(y)
        return outs[-1]

    def _named(self):
        """pare's tensor name → this module's parameter or buffer (host/src/model/weights.rs)."""
        out = {}
        for i, (kind, p) in enumerate(self.nodes):
            if kind == "Conv":
                out[f"{p['name']}.weight"] = self.layers[f"c{i}"].weight
                bn = self.layers[f"b{i}"]
                for t in ("weight", "bias", "running_mean", "running_var"):
                    out[f"{p['bn']}.{t}"] = getattr(bn, t)
            elif kind == "Dense":
                out[f"{p['name']}.weight"] = self.layers[f"d{i}"].weight
                out[f"{p['name']}.bias"] = self.layers[f"d{i}"].bias
        return out

    def pare_state(self):
        """The weights under pare's tensor names, F32 on the CPU."""
        return {k: v.detach().float().cpu().contiguous() for k, v in self._named().items()}

    def load_pare_state(self, tensors):
        with torch.no_grad():
            for k, t in self._named().items():
                t.copy_(tensors[k].reshape(t.shape))


def read_safetensors(path):
    """(tensors as float32 torch tensors, metadata) of a safetensors file; F32 or F16 only."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        body = f.read()
    meta = header.pop("__metadata__", {}) or {}
    dtypes = {"F32": torch.float32, "F16": torch.float16}
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        t = torch.frombuffer(bytearray(body[a:b]), dtype=dtypes[v["dtype"]]).reshape(v["shape"])
        out[k] = t.float()
    return out, meta


def write_safetensors(path, tensors, metadata):
    """Writes `tensors` (name → torch tensor, F32 or F16) with string `metadata`."""
    names = {torch.float32: "F32", torch.float16: "F16"}
    header, chunks, off = {"__metadata__": metadata}, [], 0
    for k in sorted(tensors):
        t = tensors[k].contiguous().cpu()
        data = t.numpy().tobytes()
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for c in chunks:
            f.write(c)


def write_shards(prefix, tensors, metadata, half=(), limit=15_000_000):
    """Writes `tensors` as `{prefix}-0.safetensors`, `-1`, … of at most `limit` bytes each (small
    files to copy back from a GPU machine), the names in `half` as F16, each shard with
    `metadata`; `merge_shards.py` joins them."""
    shard, size, k = {}, 0, 0
    for name, v in tensors.items():
        v = v.half() if name in half else v
        nbytes = v.numel() * v.element_size()
        if shard and size + nbytes > limit:
            write_safetensors(f"{prefix}-{k}.safetensors", shard, metadata)
            shard, size, k = {}, 0, k + 1
        shard[name], size = v, size + nbytes
    write_safetensors(f"{prefix}-{k}.safetensors", shard, metadata)
