"""Exports the pretrained CIFAR ResNet-20 of ../shared/models/resnet-cifar10 (its README's
definition: option-A shortcuts as x[:, :, ::2, ::2] plus channel padding) to ONNX with PyTorch's
TorchScript exporter, the way a user would. Usage:
  python3 bench/onnx_from_pytorch.py OUT.onnx fold|nofold [SAFETENSORS] [DEPTH]
(`fold`: do_constant_folding=True, BatchNorm folded into conv biases; `nofold`: BatchNorm nodes
and the pad amounts computed by Shape/Gather/Mul/Sub subgraphs). Needs torch, onnx, safetensors."""
import sys

import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import load_file
class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.conv1=nn.Conv2d(i,o,3,st,1,bias=False); s.bn1=nn.BatchNorm2d(o)
        s.conv2=nn.Conv2d(o,o,3,1,1,bias=False); s.bn2=nn.BatchNorm2d(o)
        s.pad = (st!=1 or i!=o); s.planes=o
    def forward(s,x):
        y=F.relu(s.bn1(s.conv1(x))); y=s.bn2(s.conv2(y))
        sc = F.pad(x[:,:,::2,::2],(0,0,0,0,s.planes//4,s.planes//4),"constant",0) if s.pad else x
        return F.relu(y+sc)
class R(nn.Module):
    def __init__(s,n=3):
        super().__init__()
        s.conv1=nn.Conv2d(3,16,3,1,1,bias=False); s.bn1=nn.BatchNorm2d(16)
        L=[];i=16
        for st,(o) in enumerate([16,32,64]):
            blocks=[]
            for b in range(n):
                blocks.append(Block(i,o,2 if (st>0 and b==0) else 1)); i=o
            L.append(nn.Sequential(*blocks))
        s.layer1,s.layer2,s.layer3=L
        s.linear=nn.Linear(64,10)
    def forward(s,x):
        x=F.relu(s.bn1(s.conv1(x))); x=s.layer3(s.layer2(s.layer1(x)))
        return s.linear(F.adaptive_avg_pool2d(x,1).flatten(1))
depth = int(sys.argv[4]) if len(sys.argv) > 4 else 20
m=R((depth - 2) // 6); sd=load_file(sys.argv[3] if len(sys.argv) > 3 else '../shared/models/resnet-cifar10/resnet20.safetensors'); m.load_state_dict(sd, strict=False); m.eval()
fold = sys.argv[2] == "fold"
torch.onnx.export(m, torch.randn(1,3,32,32), sys.argv[1], dynamo=False, do_constant_folding=fold, input_names=["input"], output_names=["logits"], opset_version=13)
import onnx; g=onnx.load(sys.argv[1]).graph
from collections import Counter; print(Counter(n.op_type for n in g.node))
