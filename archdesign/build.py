"""PyTorch modules built from the layer expansion (never from a second description).

Each block becomes a :class:`LayerGraph`: one submodule per layer, evaluated in order, each
reading the outputs its layer names. Counts of the built module therefore equal the
analytic counts by construction, and tests check it against fvcore.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from archdesign.cost import cost
from archdesign.errors import InputError
from archdesign.layers import blocks, stage_name
from archdesign.ops import OPS, Layer
from archdesign.spec import ArchSpec

#: Copies of the float32 weights a build may hold at once (module, trace, ONNX proto and
#: runtime session) and of the peak live activations (inputs, outputs, reference run).
WEIGHT_COPIES = 4
ACTIVATION_COPIES = 3


def layer_module(layer: Layer) -> nn.Module:
    """The PyTorch module that computes ``layer`` (its op table row's)."""
    return OPS[layer.op].module(layer)


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
        return values[-1] if values else x  # an identity block runs nothing


class Network(nn.Module):
    """``stem`` -> ``stages.s<i>.b<j>`` -> ``head``, named as the layers are
    (:func:`archdesign.layers.stage_name`)."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        placed = blocks(spec)
        self.stem = LayerGraph(placed[0].layers)
        stages: dict[str, nn.Sequential] = {stage_name(i): nn.Sequential()
                                            for i in range(len(spec.stages))}
        for block in placed[1:-1]:
            stages[stage_name(block.stage)].add_module(f"b{block.index}",
                                                       LayerGraph(block.layers))
        self.stages = nn.ModuleDict(stages)
        self.head = LayerGraph(placed[-1].layers)
        _initialize(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages.values():
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


def available_memory() -> int:
    """Bytes this process may still allocate: MemAvailable, else physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimated_bytes(spec: ArchSpec, batch: int) -> int:
    """What running ``spec`` in PyTorch at ``batch`` allocates, from its own counts."""
    c = cost(spec, batch, "float32")
    return WEIGHT_COPIES * 4 * c.params + ACTIVATION_COPIES * c.peak_activation_bytes


def check_fits(spec: ArchSpec, batch: int, what: str, limit: int | None = None) -> None:
    """An :class:`InputError` with the estimate, before any allocation, if building and
    running ``spec`` at ``batch`` would need more than ``limit`` (default: the memory
    this machine has available)."""
    need = estimated_bytes(spec, batch)
    have = available_memory() if limit is None else limit
    if need > have:
        raise InputError(f"{what}: {spec.name or 'the network'} at batch {batch} needs about "
                         f"{need / 2**30:.1f} GiB ({cost(spec).params / 1e6:.1f} M params, "
                         f"peak activations {cost(spec, batch).peak_activation_bytes / 2**30:.2f}"
                         f" GiB); only {have / 2**30:.1f} GiB is available")


def build(spec: ArchSpec) -> Network:
    """The PyTorch module ``spec`` describes (float32, training mode, on the CPU)."""
    return Network(spec)
