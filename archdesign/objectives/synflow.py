"""SynFlow (Tanaka et al., NeurIPS 2020): the synaptic saliency of a network, data-free.

Every parameter is replaced by its absolute value, the input is one all-ones image, and
R = Σ f(1) (the sum of the network's outputs). The score is log Σ_θ |θ·∂R/∂θ| over the
weights of the conv and linear layers, the zero-cost-proxy form of Abdelfattah et al.
(ICLR 2021). BatchNorm is in inference mode at its initial statistics (an identity up to
its ε), as those authors remove it; every rectifier then passes its positive input, so
the network is (nearly) a product of its |weights| along every path. That product
overflows float32 for deep networks, so the whole pass runs in float64.

Weights are Kaiming-normal from a seeded generator (only their magnitudes matter). No data
is assumed: the input is the same all-ones image at the spec's resolution (or
``resolution``) for every network.
"""

from __future__ import annotations

import math
from typing import Any

from archdesign.objectives.base import Objective
from archdesign.objectives.torch_init import at_resolution, init_weights
from archdesign.spec import ArchSpec


class SynFlow(Objective):
    name = "synflow"

    def __init__(self, resolution: int | None = None, seed: int = 0) -> None:
        self.resolution = resolution
        self.seed = seed

    def details(self, spec: ArchSpec) -> dict[str, Any]:
        import torch
        from torch import nn

        from archdesign.build import build

        spec = at_resolution(spec, self.resolution, "synflow resolution")
        generator = torch.Generator().manual_seed(self.seed)
        model = build(spec).double()
        init_weights(model, generator)
        with torch.no_grad():
            for p in model.parameters():
                p.abs_()
        model.eval()
        x = torch.ones((1, spec.in_channels, spec.resolution, spec.resolution),
                       dtype=torch.float64)
        model(x).sum().backward()
        saliency = sum(float((m.weight * m.weight.grad).detach().abs().sum())
                       for m in model.modules()
                       if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None)
        score = math.log(saliency) if 0 < saliency < math.inf else \
            (math.inf if saliency == math.inf else -math.inf)
        return {"score": score}

    def score(self, spec: ArchSpec) -> float:
        return float(self.details(spec)["score"])

    def settings(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "seed": self.seed}
