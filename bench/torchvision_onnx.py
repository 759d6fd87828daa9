"""torchvision classifiers exported to ONNX by both of PyTorch's exporters, and onnxruntime's
logits for them, for `tests/tests/torchvision_onnx.rs` (which compares pare's import).

Usage: torchvision_onnx.py OUTDIR IMAGES.u8 N SIZE

IMAGES.u8 holds N RGB images of SIZE×SIZE pixels, HWC, 8 bits each. Each model of MODELS gets
random weights and random BatchNorm statistics (seeded), 10 classes, and is written twice:
`OUTDIR/<model>_<SIZE>_legacy.onnx` (TorchScript exporter, opset 13, weights inline) and
`OUTDIR/<model>_<SIZE>_dynamo.onnx` (torch.export exporter, PyTorch's default, weights in a
`.onnx.data` file beside it). For each written model, `<file>.ort.f32` holds onnxruntime's
logits, N×10 little-endian float32, for the images normalised with ImageNet's mean and std.
An exporter that cannot export a model writes `<file>.failed` with its error instead.
Needs torch, torchvision, onnxscript, onnx and onnxruntime (`PARE_TORCH=1 scripts/setup` installs them into $PARE_TORCH_VENV).
"""

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torchvision

MODELS = ["resnet18", "resnet34", "resnet50", "resnet101", "vgg11_bn", "vgg16_bn"]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def randomise(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    out, images, n, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    out.mkdir(parents=True, exist_ok=True)
    pixels = np.fromfile(images, np.uint8).reshape(n, size, size, 3)
    x = ((pixels.astype(np.float32) / np.float32(255) - MEAN) / STD).transpose(0, 3, 1, 2).copy()
    for name in MODELS:
        torch.manual_seed(0)
        model = randomise(getattr(torchvision.models, name)(num_classes=10))
        for exporter in ("legacy", "dynamo"):
            path = out / f"{name}_{size}_{exporter}.onnx"
            try:
                with torch.no_grad():
                    torch.onnx.export(model, torch.from_numpy(x[:1]), str(path), dynamo=exporter == "dynamo",
                                      input_names=["input"], output_names=["logits"],
                                      opset_version=18 if exporter == "dynamo" else 13)
            except Exception as e:  # PyTorch's own limits (e.g. adaptive pools it cannot express)
                Path(f"{path}.failed").write_text(f"{type(e).__name__}: {e}\n")
                print(f"{path.name}: the exporter failed: {type(e).__name__}", flush=True)
                continue
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            logits = np.concatenate([sess.run(None, {"input": x[i:i + 1]})[0] for i in range(n)])
            logits.astype("<f4").tofile(f"{path}.ort.f32")
            print(f"{path.name}: exported, onnxruntime run on {n} images", flush=True)


if __name__ == "__main__":
    main()
