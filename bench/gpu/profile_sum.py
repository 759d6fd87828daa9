"""Sums cubecl's profiling log (`[profiling] logger = { level = "basic", file = … }` in a
cubecl.toml beside the run: one `| duration | kernel name` line per kernel launch) per kernel,
hashes stripped, largest first. Reads plain or .xz files.
Usage: python3 bench/gpu/profile_sum.py LOG[.xz]..."""
import collections
import lzma
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def seconds(text):
    m = re.match(r"([\d.]+)(ns|µs|us|ms|s)$", text.strip())
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


for path in sys.argv[1:]:
    total, count, unmeasured = collections.Counter(), collections.Counter(), 0
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt") as f:
        for line in f:
            parts = line.rstrip("\n").split("|")
            if len(parts) < 3:
                continue
            d = seconds(parts[1])
            name = re.sub(r"_[0-9a-f]{8}\b", "", "|".join(parts[2:]).strip())
            if d is None:
                unmeasured += 1
                continue
            total[name] += d
            count[name] += 1
    gpu = sum(total.values())
    print(f"== {path}: {sum(count.values())} launches timed, {unmeasured} not measured, GPU {gpu * 1e3:.1f} ms")
    for name, t in total.most_common(14):
        print(f"{t * 1e3:9.2f} ms {100 * t / max(gpu, 1e-12):5.1f} % {count[name]:6d}x  {name[:110]}")
