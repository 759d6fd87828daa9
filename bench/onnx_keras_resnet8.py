"""A Keras-style ResNet-8 (MLPerf Tiny's layout) built in PyTorch with random weights and
exported to ONNX: explicit F.pad(x, (0, 1, 0, 1)) before each stride-2 3×3 conv (TensorFlow's
"same"), 1×1 stride-2 shortcut convs with bias and no BatchNorm, Keras's BatchNorm epsilon 1e-3,
a classifier as MatMul + Add (what tf2onnx writes for Dense), raw 0..255 inputs.
Usage: python3 bench/onnx_keras_resnet8.py OUT.onnx fold|nofold   (needs torch and onnx)"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Stack(nn.Module):
    def __init__(self, i, o, stride):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(i, o, 3, stride, 0 if stride == 2 else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(o, eps=1e-3)
        self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(o, eps=1e-3)
        self.short = nn.Conv2d(i, o, 1, stride, 0, bias=True) if stride == 2 else None

    def forward(self, x):
        y = F.pad(x, (0, 1, 0, 1)) if self.stride == 2 else x
        y = F.relu(self.bn1(self.conv1(y)))
        y = self.bn2(self.conv2(y))
        s = self.short(x) if self.short is not None else x
        return F.relu(y + s)


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16, eps=1e-3)
        self.s1, self.s2, self.s3 = Stack(16, 16, 1), Stack(16, 32, 2), Stack(32, 64, 2)
        self.w = nn.Parameter(torch.randn(64, 10) * 0.1)
        self.b = nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))  # raw 0..255 pixels in, as MLPerf Tiny feeds them
        x = self.s3(self.s2(self.s1(x)))
        return F.adaptive_avg_pool2d(x, 1).flatten(1) @ self.w + self.b


torch.manual_seed(0)
m = ResNet8()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            mod.weight.mul_(0.02)  # keep activations of raw 0..255 pixels in range
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.5, 2)
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.2, 0.2)
m.eval()
torch.onnx.export(m, torch.rand(1, 3, 32, 32) * 255, sys.argv[1], dynamo=False,
                  do_constant_folding=sys.argv[2] == "fold", input_names=["input"],
                  output_names=["logits"], opset_version=13)
