"""Which latency-model features fit the board: per-layer least squares on a profile's measured
models, fitted on the first N and checked on the rest. Needs numpy.
Make a 41-model profile of resnet20 on QEMU, then run this on it:
  PARE_LATENCY_VARIANTS=40 pare prune --model resnet20 --weights ../shared/models/resnet-cifar10/resnet20.safetensors \
    --data ../shared/data/cifar10 --max-latency 50% --budget 1 --eval-limit 50 --out /tmp/lat
  python3 bench/latency_features.py ~/.cache/pare/latency/qemu-mps2-an500/<newest>.json 25
"""
import json
import sys

import numpy as np

d = json.load(open(sys.argv[1]))
nfit = int(sys.argv[2]) if len(sys.argv) > 2 else 15
pts = d["points"]


def conv_feats(ci, co, k=3):
    row = k * ci
    t = float(row % 4 != 0)
    kp = k * 4 * np.ceil(row / 4)
    pairs = np.ceil(co / 2)
    return {
        "A: 1, kp, co, pairs·kp": [1, kp, co, pairs * kp],
        "F: A + pairs, tail, tail·pairs": [1, kp, co, pairs * kp, pairs, t, t * pairs],
        "G: F + tail·kp (shipped: im2col packing only where the row-slot path does not apply)": [1, kp, co, pairs * kp, pairs, t, t * pairs, t * kp],
    }


steps = range(1, len(pts[0]["counts"]) - 1)
# 3×3 convolutions: features of 8 (shipped), 7 or 4 (older) entries, kernel rows of 3·ci.
conv = [s for s in steps if len(pts[0]["features"][s]) in (4, 7, 8) and pts[0]["features"][s][1] % 3 == 0 and pts[0]["features"][s][1] > 12]
for name in conv_feats(1, 1):
    errs, pt, mt = [], np.zeros(len(pts) - nfit), np.zeros(len(pts) - nfit)
    for s in conv:
        X = np.array([conv_feats(p["widths"][s][0], p["widths"][s][1])[name] for p in pts])
        y = np.array([p["counts"][s] for p in pts], float)
        b = np.linalg.lstsq(X[:nfit], y[:nfit], rcond=None)[0]
        pr = X[nfit:] @ b
        errs += list(abs(pr - y[nfit:]) / y[nfit:])
        pt += pr
        mt += y[nfit:]
    e = np.array(errs)
    print(f"{name}: fitted on {nfit}, checked on {len(pts) - nfit}: layer error mean {100 * e.mean():.2f} %, "
          f"max {100 * e.max():.2f} %; 3×3-conv total max {100 * (abs(pt - mt) / mt).max():.2f} %")
