"""PyTorch modules of the op table's rows (:data:`archdesign.ops.OPS` names them).

Each function builds the module that computes one :class:`~archdesign.ops.Layer`; the
op table refers to them by name so that importing the table does not import torch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from archdesign.ops import Layer


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


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle, as a reshape-transpose (exports to ONNX as such)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


_ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "hswish": lambda: nn.Hardswish(inplace=True),
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "hsigmoid": lambda: nn.Hardsigmoid(inplace=True),
}


def conv(layer: Layer) -> nn.Module:
    return nn.Conv2d(layer.c_in, layer.c_out, layer.kernel, layer.stride, layer.padding,
                     groups=layer.groups, bias=layer.bias)


def linear(layer: Layer) -> nn.Module:
    return nn.Linear(layer.c_in, layer.c_out, bias=layer.bias)


def batch_norm(layer: Layer) -> nn.Module:
    return nn.BatchNorm2d(layer.c_out)


def layer_norm(layer: Layer) -> nn.Module:
    return LayerNorm2d(layer.c_out, eps=1e-6)


def layer_scale(layer: Layer) -> nn.Module:
    return LayerScale(layer.c_out)


def activation(layer: Layer) -> nn.Module:
    module: nn.Module = _ACTIVATIONS[layer.act]()
    return module


def add(layer: Layer) -> nn.Module:
    return Add()


def mul(layer: Layer) -> nn.Module:
    return Mul()


def channel_shuffle(layer: Layer) -> nn.Module:
    return ChannelShuffle(layer.groups)


def max_pool(layer: Layer) -> nn.Module:
    return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding)


def global_pool(layer: Layer) -> nn.Module:
    return nn.AdaptiveAvgPool2d(1)


def flatten(layer: Layer) -> nn.Module:
    return nn.Flatten(1)
