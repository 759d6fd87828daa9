"""Tables of bench/flowers.sh in the paper's form: Top-1, FLOPs (PR %), parameters (PR %) per
criterion, then per-class accuracy original vs compressed summarised.
Usage: python3 bench/flowers_table.py OUT_DIR [MODEL]"""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
times = {}
if (out / "times.txt").exists():
    times = dict(l.split() for l in (out / "times.txt").read_text().splitlines() if l.strip())
model = sys.argv[2] if len(sys.argv) > 2 else "resnet18"
print(f"| {model} @64 | Top-1 | FLOPs (PR) | parameters (PR) | removals | wall |")
print("|---|---:|---:|---:|---:|---:|")
first = None
rows = []
for c in ["attribution", "taylor-guided", "taylor", "l1"]:
    f = out / c / "state.json"
    if not f.exists():
        continue
    if not (out / c / "final.safetensors").exists():
        print(f"({c}: not finished, left out)", file=sys.stderr)
        continue
    h = json.loads(f.read_text())["history"]
    first, last = h[0], h[-1]
    rows.append((c, first, last, len([x for x in h[1:] if x["removed"] > 0])))
if first:
    print(f"| original | {100 * first['top1']:.2f} % | {first['macs'] / 1e6:.1f} M | {first['params'] / 1e6:.2f} M | – | – |")
for c, first, last, n in rows:
    print(f"| {c} | {100 * last['top1']:.2f} % | {last['macs'] / 1e6:.1f} M ({100 * (1 - last['macs'] / first['macs']):.1f} %) | "
          f"{last['params'] / 1e6:.2f} M ({100 * (1 - last['params'] / first['params']):.1f} %) | {n} | {times.get(c, '?')} s |")
print()
print("| criterion | classes better | classes worse | worst class Δ | best class Δ |")
print("|---|---:|---:|---:|---:|")
for c, first, last, _ in rows:
    d = [b - a for a, b in zip(first["per_class"], last["per_class"])]
    worst, best = (f"{100 * v:+.1f}".replace("-", "−") for v in (min(d), max(d)))
    print(f"| {c} | {sum(x > 0 for x in d)} | {sum(x < 0 for x in d)} | {worst} | {best} |")
