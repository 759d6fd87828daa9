"""Joins safetensors shards (bench/gpu/train_vgg16.py's output) into one file, with no
dependencies: a safetensors file is an 8-byte header length, a JSON header of name → dtype, shape
and byte range, then the bytes.
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
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


def main():
    out, shards = sys.argv[1], sys.argv[2:]
    tensors = {}
    for s in shards:
        for k, v in read(s).items():
            if k in tensors:
                sys.exit(f"{k} is in two shards")
            tensors[k] = v
    header, body, off = {}, bytearray(), 0
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
