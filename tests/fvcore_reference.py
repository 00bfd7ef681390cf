"""The reference counts: fvcore on the module archdesign builds."""

from __future__ import annotations

import torch
from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis, parameter_count

from archdesign.build import build
from archdesign.spec import ArchSpec

# fvcore estimates FLOPs for normalization and global pooling; archdesign (like the
# published complexity tables) counts only conv and linear multiply-accumulates.
_UNCOUNTED = ("aten::batch_norm", "aten::layer_norm", "aten::adaptive_avg_pool2d")


def fvcore_counts(spec: ArchSpec) -> dict[str, int]:
    """FLOPs, activations and params fvcore finds on the built module (eval, batch 1)."""
    model = build(spec).eval()
    x = torch.randn(1, spec.in_channels, spec.resolution, spec.resolution)
    flops = FlopCountAnalysis(model, x)
    flops.set_op_handle(**{op: (lambda inputs, outputs: 0) for op in _UNCOUNTED})
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    acts = ActivationCountAnalysis(model, x)
    acts.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return {"flops": int(flops.total()), "activations": int(acts.total()),
            "params": int(parameter_count(model)[""])}
