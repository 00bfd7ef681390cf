"""The Zen-NAS score (Lin et al., ICCV 2021) from a real forward pass of the built module.

With every conv and linear weight drawn from N(0, 1), BatchNorm in training mode and a
Gaussian input x, the score is

    log E‖f(x) − f(x + ε·δ)‖₁  +  Σ_BN log sqrt(mean running variance)

where f is the feature map before global pooling, δ ~ N(0, 1) and ε = 0.01 (the paper's
mixup γ). The second term is the BatchNorm variance correction: BN renormalizes every
layer, so the perturbation's growth that BN divided away is added back in log space.
Running statistics are taken from the perturbed batch (momentum 1), as the reference's
last forward pass sets them. The seed is fixed, so a spec always gets the same score.
"""

from __future__ import annotations

import math
from typing import Any

from archdesign.errors import InputError
from archdesign.objectives.base import Objective
from archdesign.objectives.torch_init import at_resolution
from archdesign.spec import ArchSpec


class ZenNAS(Objective):
    name = "zen"

    def __init__(self, batch: int = 8, resolution: int | None = None, mixup: float = 1e-2,
                 repeats: int = 1, seed: int = 0) -> None:
        if batch < 2:
            raise InputError(f"zen batch: BatchNorm statistics need batch >= 2, got {batch}")
        if repeats < 1:
            raise InputError(f"zen repeats: must be >= 1, got {repeats}")
        self.batch = batch
        self.resolution = resolution
        self.mixup = mixup
        self.repeats = repeats
        self.seed = seed

    def _parts(self, spec: ArchSpec) -> tuple[float, float]:
        import torch
        from torch import nn

        from archdesign.build import build

        spec = at_resolution(spec, self.resolution, "zen resolution")
        generator = torch.Generator().manual_seed(self.seed)
        model = build(spec)
        model.train()
        deltas, corrections = [], []
        for _ in range(self.repeats):
            with torch.no_grad():
                for m in model.modules():
                    if isinstance(m, (nn.Conv2d, nn.Linear)):
                        m.weight.normal_(generator=generator)
                        if m.bias is not None:
                            m.bias.zero_()
                    elif isinstance(m, nn.BatchNorm2d):
                        m.momentum = 1.0
                        m.weight.fill_(1.0)
                        m.bias.zero_()
                shape = (self.batch, spec.in_channels, spec.resolution, spec.resolution)
                x = torch.randn(shape, generator=generator)
                x_mixed = x + self.mixup * torch.randn(shape, generator=generator)
                delta = (_pre_pool(model, x) - _pre_pool(model, x_mixed)).abs().mean()
                correction = 0.0
                for m in model.modules():
                    if isinstance(m, nn.BatchNorm2d) and m.running_var is not None:
                        correction += 0.5 * math.log(float(m.running_var.mean()))
            deltas.append(math.log(float(delta)))
            corrections.append(correction)
        return sum(deltas) / len(deltas), sum(corrections) / len(corrections)

    def score(self, spec: ArchSpec) -> float:
        log_delta, correction = self._parts(spec)
        return log_delta + correction

    def details(self, spec: ArchSpec) -> dict[str, Any]:
        log_delta, correction = self._parts(spec)
        return {"score": log_delta + correction, "log_expected_perturbation": log_delta,
                "bn_variance_correction": correction}

    def settings(self) -> dict[str, Any]:
        return {"batch": self.batch, "resolution": self.resolution, "mixup": self.mixup,
                "repeats": self.repeats, "seed": self.seed}


def _pre_pool(model: Any, x: Any) -> Any:
    """The feature map just before the head's global pooling."""
    from torch import nn

    x = model.stem(x)
    for stage in model.stages.values():
        x = stage(x)
    values: list[Any] = []
    for module, inputs in zip(model.head.ops.values(), model.head.inputs, strict=True):
        if isinstance(module, nn.AdaptiveAvgPool2d):
            return values[-1] if values else x
        values.append(module(*[x if i < 0 else values[i] for i in inputs]))
    raise ValueError("the head has no global pooling layer")
