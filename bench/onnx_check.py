"""Runs a pare-exported ONNX model in onnxruntime on the inputs pare saw and compares logits.
Usage: python3 bench/onnx_check.py MODEL.onnx INPUTS.f32 LOGITS.f32 N C H W K
(raw little-endian float32: inputs N×C×H×W, already normalised; pare's logits N×K).
Prints `max_rel <value> argmax_agree <a>/<N>`; needs numpy and onnxruntime."""
import sys

import numpy as np
import onnxruntime as ort

model, xs, ys = sys.argv[1:4]
n, c, h, w, k = map(int, sys.argv[4:9])
x = np.fromfile(xs, dtype="<f4").reshape(n, c, h, w)
want = np.fromfile(ys, dtype="<f4").reshape(n, k)
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
got = np.concatenate([sess.run(["logits"], {"input": x[i : i + 1]})[0] for i in range(n)])
rel = float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-6))
agree = int((got.argmax(1) == want.argmax(1)).sum())
print(f"max_rel {rel:.3e} argmax_agree {agree}/{n}")
