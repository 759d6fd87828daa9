"""Markdown table of pruning runs: one row per criterion folder holding a state.json.
Usage: python3 bench/compare_table.py OUT_DIR [TIMES_FILE]"""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
times = {}
if len(sys.argv) > 2 and pathlib.Path(sys.argv[2]).exists():
    for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
        name, secs, _ = line.split()
        times[name] = secs
print("| criterion | removals | FLOPs PR | params PR | top-1 | Δ top-1 | streams kept (stage 1/2/3) | wall time |")
print("|---|---:|---:|---:|---:|---:|---|---:|")
for c in ["attribution", "taylor-guided", "taylor", "l1", "bn-scale", "random", "sss", "variational"]:
    f = out / c / "state.json"
    if not f.exists():
        continue
    h = json.loads(f.read_text())["history"]
    first, last = h[0], h[-1]
    removals = len([x for x in h[1:] if x["removed"] > 0])
    # A CIFAR ResNet's stream width is its layerN.0.conv2 output (stem for stage 1).
    ch = dict(last["channels"])
    streams = "/".join(str(ch.get(k, "?")) for k in ["conv1", "layer2.0.conv2", "layer3.0.conv2"])
    print(f"| {c} | {removals} | {100 * (1 - last['macs'] / first['macs']):.1f} % | "
          f"{100 * (1 - last['params'] / first['params']):.1f} % | {100 * last['top1']:.2f} % | "
          f"{100 * (last['top1'] - first['top1']):+.2f} | {streams} | {times.get(c, '?')} s |")
