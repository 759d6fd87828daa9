"""Joins safetensors shards (bench/gpu/train_vgg16.py's and train_flowers.py's output) into one
F32 file, with no dependencies: a safetensors file is an 8-byte header length, a JSON header of
name → dtype, shape and byte range, then the bytes. F16 tensors become F32 (exactly: every half
is a float); the first shard's metadata (a pare checkpoint's `pare.arch`) is kept.
Usage: python merge_shards.py OUT.safetensors SHARD...
"""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        body = f.read()
    meta = header.pop("__metadata__", None)
    out = {}
    for k, v in header.items():
        data = body[v["data_offsets"][0]:v["data_offsets"][1]]
        if v["dtype"] == "F16":
            n = len(data) // 2
            data = struct.pack(f"<{n}f", *struct.unpack(f"<{n}e", data))
        elif v["dtype"] != "F32":
            sys.exit(f"{path}: {k} is {v['dtype']}, not F32 or F16")
        out[k] = ("F32", v["shape"], data)
    return out, meta


def main():
    out, shards = sys.argv[1], sys.argv[2:]
    tensors, metadata = {}, None
    for s in shards:
        shard, meta = read(s)
        metadata = metadata or meta
        for k, v in shard.items():
            if k in tensors:
                sys.exit(f"{k} is in two shards")
            tensors[k] = v
    header, body, off = ({"__metadata__": metadata} if metadata else {}), bytearray(), 0
    for k in sorted(tensors):
        dtype, shape, data = tensors[k]
        header[k] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        body += data
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + body)
    print(f"{out}: {len(tensors)} tensors, {off / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
