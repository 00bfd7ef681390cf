"""PyTorch modules built from the layer expansion (never from a second description).

Each block becomes a :class:`LayerGraph`: one submodule per layer, evaluated in order, each
reading the outputs its layer names. Counts of the built module therefore equal the
analytic counts by construction, and tests check it against fvcore.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from archdesign.layers import Layer, blocks
from archdesign.spec import ArchSpec


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (ConvNeXt)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerScale(nn.Module):
    def __init__(self, channels: int, init: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Mul(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "hswish": lambda: nn.Hardswish(inplace=True),
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


def layer_module(layer: Layer) -> nn.Module:
    """The PyTorch module that computes ``layer``."""
    if layer.op == "conv":
        return nn.Conv2d(layer.c_in, layer.c_out, layer.kernel, layer.stride, layer.padding,
                         groups=layer.groups, bias=layer.bias)
    if layer.op == "linear":
        return nn.Linear(layer.c_in, layer.c_out, bias=layer.bias)
    if layer.op == "bn":
        return nn.BatchNorm2d(layer.c_out)
    if layer.op == "ln":
        return LayerNorm2d(layer.c_out, eps=1e-6)
    if layer.op == "act":
        return _ACTIVATIONS[layer.act]()
    if layer.op == "maxpool":
        return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding)
    if layer.op == "gap":
        return nn.AdaptiveAvgPool2d(1)
    if layer.op == "flatten":
        return nn.Flatten(1)
    if layer.op == "scale":
        return LayerScale(layer.c_out)
    if layer.op == "add":
        return Add()
    if layer.op == "mul":
        return Mul()
    raise ValueError(f"no module for op {layer.op!r}")


class LayerGraph(nn.Module):
    """A block: its layers' modules, run in order, each reading the outputs it names."""

    def __init__(self, layers: tuple[Layer, ...]) -> None:
        super().__init__()
        self.ops = nn.ModuleDict({layer.name: layer_module(layer) for layer in layers})
        self.inputs = [layer.inputs for layer in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: list[torch.Tensor] = []
        for module, inputs in zip(self.ops.values(), self.inputs, strict=True):
            values.append(module(*[x if i < 0 else values[i] for i in inputs]))
        return values[-1]


class Network(nn.Module):
    """``stem`` -> ``stages[i][j]`` -> ``head``, mirroring the spec."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        placed = blocks(spec)
        self.stem = LayerGraph(placed[0].layers)
        stages = [nn.Sequential() for _ in spec.stages]
        for block in placed[1:-1]:
            stages[block.stage].append(LayerGraph(block.layers))
        self.stages = nn.ModuleList(stages)
        self.head = LayerGraph(placed[-1].layers)
        _initialize(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        out: torch.Tensor = self.head(x)
        return out


def _initialize(model: nn.Module) -> None:
    """He init for convs, small normal for linear (as torchvision/pycls do)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build(spec: ArchSpec) -> Network:
    """The PyTorch module ``spec`` describes (float32, training mode, on the CPU)."""
    return Network(spec)
