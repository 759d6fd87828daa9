"""Tables of bench/vgg16-paper.sh: pare's runs beside the paper's VGG-16 / CIFAR-10 figures,
and per-class accuracy of the original vs the attribution-pruned model.
Usage: python3 bench/vgg16_paper_table.py OUT_DIR BUDGET"""
import json
import pathlib
import sys

out, budget = pathlib.Path(sys.argv[1]), sys.argv[2]
# The paper's table (base 93.96 %): top-1 and FLOPs reduction; params reduction where given.
PAPER = {
    "l1": ("L1 (Li et al.)", 93.40, 34.39),
    "sss": ("SSS (Huang & Wang)", 93.02, 41.72),
    "variational": ("Zhao et al. (variational)", 93.18, 39.49),
    "taylor": ("Taylor (Molchanov)", 93.20, 59.24),
    "taylor-guided": ("Taylor-guided", 93.21, 79.30),
    "attribution": ("attribution", None, None),
}
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
times = {}
tf = out / "times.txt"
if tf.exists():
    for line in tf.read_text().splitlines():
        name, secs = line.split()
        times[name] = int(secs)

runs = []
for d in sorted(p for p in out.iterdir() if (p / "state.json").exists()):
    crit, target = d.name.rsplit("-", 1)
    h = json.loads((d / "state.json").read_text())["history"]
    runs.append((crit, float(target), h, times.get(d.name)))
order = list(PAPER)
runs.sort(key=lambda r: (order.index(r[0]) if r[0] in order else 99, r[1]))

print(f"VGG-16-BN on CIFAR-10, fine-tuning budget {budget} of train_lossless per run; top-1 on test_lossless (1,668)\n")
print("| criterion | paper: FLOPs PR | paper: top-1 (base 93.96 %) | pare: FLOPs PR | params PR | removals | top-1 | Δ top-1 | wall time |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for crit, target, h, secs in runs:
    name, ptop, ppr = PAPER.get(crit, (crit, None, None))
    first, last = h[0], h[-1]
    removals = len([x for x in h[1:] if x["removed"] > 0])
    fl = 100 * (1 - last["macs"] / first["macs"])
    pp = 100 * (1 - last["params"] / first["params"])
    paper_top = f"{ptop:.2f} %" if ptop else "—"
    paper_pr = f"{ppr:.2f} %" if ppr else "—"
    wall = f"{secs / 60:.1f} min" if secs else "?"
    print(f"| {name} | {paper_pr} | {paper_top} | {fl:.2f} % | {pp:.2f} % | {removals} | "
          f"{100 * last['top1']:.2f} % | {100 * (last['top1'] - first['top1']):+.2f} | {wall} |")
if runs:
    print(f"\npare's base (iteration 0 of every run): {100 * runs[0][2][0]['top1']:.2f} %")

att = [r for r in runs if r[0] == "attribution"]
if att:
    crit, target, h, _ = max(att, key=lambda r: r[1])
    first, last = h[0], h[-1]
    print(f"\nPer class, original vs attribution-pruned (−{100 * (1 - last['macs'] / first['macs']):.2f} % FLOPs), test_lossless:\n")
    print("| class | original | compressed | Δ |")
    print("|---|---:|---:|---:|")
    for i, c in enumerate(CLASSES[: len(first["per_class"])]):
        a, b = 100 * first["per_class"][i], 100 * last["per_class"][i]
        print(f"| {c} | {a:.2f} % | {b:.2f} % | {b - a:+.2f} |")
