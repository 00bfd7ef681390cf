"""What the forward-pass objectives share: the spec at another input size, seeded weights."""

from __future__ import annotations

from typing import Any

from archdesign.spec import ArchSpec


def at_resolution(spec: ArchSpec, resolution: int | None, what: str) -> ArchSpec:
    """``spec`` with its input resolution replaced (``None``: unchanged)."""
    if resolution is None:
        return spec
    return ArchSpec.from_dict({**spec.to_dict(), "resolution": resolution}, what)


def init_weights(model: Any, generator: Any) -> None:
    """Kaiming-normal conv and linear weights (fan-in, ReLU gain) from ``generator``, zero
    biases, BatchNorm scale 1 and shift 0: the initialization of torchvision's CNNs, without
    touching torch's global random state (objectives run in concurrent workers)."""
    import torch
    from torch import nn

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) and m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
