from __future__ import annotations

import pytest
import torch

from archdesign.build import build
from archdesign.cost import cost
from archdesign.spec import ArchSpec
from archdesign.zoo import get_arch


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "efficientnet_b0",
                                  "convnext_tiny", "regnety_200mf"])
def test_forward_pass_and_exact_parameter_count(name: str) -> None:
    spec = get_arch(name)
    model = build(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == cost(spec).params
    small = ArchSpec.from_dict({**spec.to_dict(), "resolution": 64})
    with torch.no_grad():
        out = model(torch.randn(2, 3, small.resolution, small.resolution))
    assert out.shape == (2, 1000)
    assert torch.isfinite(out).all()


def test_module_mirrors_the_spec() -> None:
    spec = get_arch("resnet34")
    model = build(spec)
    assert [len(stage) for stage in model.stages.values()] == [s.depth for s in spec.stages]
    names = dict(model.named_modules())
    assert isinstance(names["stages.s2.b0.ops.conv_a"], torch.nn.Conv2d)
    assert names["stages.s2.b0.ops.conv_a"].stride == (2, 2)


def test_full_resolution_forward() -> None:
    spec = get_arch("regnetx_200mf")
    with torch.no_grad():
        out = build(spec).eval()(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000)
