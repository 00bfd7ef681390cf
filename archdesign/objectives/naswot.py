"""NASWOT (Mellor et al., ICML 2021): how differently a network at initialization
partitions a minibatch of inputs.

Each input gets a binary code, one bit per rectifier unit of the network (1 where the
unit's pre-activation is positive). With c_i the code of input i, the kernel
K_ij = N_A − Hamming(c_i, c_j) (N_A the number of units) counts the units on which two inputs
agree, and the score is log|det K|. A network whose units separate the inputs gets a
nearly diagonal K and a large score.

Which units count: the inputs of every ReLU, ReLU6, SiLU, h-swish and GELU module (the
positive part of a smooth rectifier is its "on" region); the sigmoid gates of squeeze-
excitation are not rectifiers and are left out. Weights are Kaiming-normal from a seeded
generator and BatchNorm uses the batch statistics (training mode), as in the authors' code.

The inputs are ``batch`` i.i.d. N(0, 1) images at the spec's resolution (or ``resolution``),
seeded. That assumes the network's activation patterns on white noise rank networks as they
would on real (normalized) images; the authors report that the score barely depends on
which images are used, not that noise is equivalent. A fixed seed makes the score a pure
function of the spec and the settings.
"""

from __future__ import annotations

import math
from typing import Any

from archdesign.errors import InputError
from archdesign.objectives.base import Objective
from archdesign.objectives.torch_init import at_resolution, init_weights
from archdesign.spec import ArchSpec

RECTIFIERS = ("ReLU", "ReLU6", "SiLU", "Hardswish", "GELU")


class NASWOT(Objective):
    name = "naswot"

    def __init__(self, batch: int = 8, resolution: int | None = None, seed: int = 0) -> None:
        if batch < 2:
            raise InputError(f"naswot batch: the kernel of one input is trivial; need batch "
                             f">= 2, got {batch}")
        self.batch = batch
        self.resolution = resolution
        self.seed = seed

    def _kernel(self, spec: ArchSpec) -> tuple[Any, int]:
        import torch

        from archdesign.build import build

        spec = at_resolution(spec, self.resolution, "naswot resolution")
        generator = torch.Generator().manual_seed(self.seed)
        model = build(spec)
        init_weights(model, generator)
        model.train()
        kernel = torch.zeros(self.batch, self.batch, dtype=torch.float64)
        units = 0

        def count(_module: Any, inputs: tuple[Any, ...]) -> None:
            nonlocal kernel, units
            code = (inputs[0].reshape(inputs[0].shape[0], -1) > 0).double()
            kernel += code @ code.T + (1 - code) @ (1 - code).T
            units += code.shape[1]

        hooks = [m.register_forward_pre_hook(count) for m in model.modules()
                 if type(m).__name__ in RECTIFIERS]
        x = torch.randn((self.batch, spec.in_channels, spec.resolution, spec.resolution),
                        generator=generator)
        with torch.no_grad():
            model(x)
        for hook in hooks:
            hook.remove()
        return kernel, units

    def details(self, spec: ArchSpec) -> dict[str, Any]:
        import torch

        kernel, units = self._kernel(spec)
        sign, logdet = torch.linalg.slogdet(kernel)
        # K is a Gram matrix (PSD); a zero determinant (two inputs with one code) is -inf
        score = float(logdet) if float(sign) > 0 else -math.inf
        return {"score": score, "units": units}

    def score(self, spec: ArchSpec) -> float:
        return float(self.details(spec)["score"])

    def settings(self) -> dict[str, Any]:
        return {"batch": self.batch, "resolution": self.resolution, "seed": self.seed}
