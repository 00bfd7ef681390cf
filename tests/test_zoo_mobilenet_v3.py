"""MobileNetV3 Large / Small in the zoo: torchvision's definitions, written with per-block
hidden widths, MobileNetV3-style SE and the MobileNetV3 head; checked against the
published figures and fvcore."""

from __future__ import annotations

import pytest
from fvcore_reference import fvcore_counts

from archdesign.cost import cost, pool_activations
from archdesign.layers import blocks
from archdesign.ops import make_divisible
from archdesign.spec import ArchSpec
from archdesign.zoo import get_arch

# torchvision (models/mobilenetv3.py): (params exactly, GMACs as published to 2 decimals,
# and to 3 decimals as in the weights' metadata "_ops").
PUBLISHED = {
    "mobilenet_v3_large": (5_483_032, 0.22, 0.217),
    "mobilenet_v3_small": (2_542_856, 0.06, 0.057),
}

# torchvision's bneck_conf rows: (input, kernel, expanded, out, use_se, activation, stride)
TORCHVISION = {
    "mobilenet_v3_large": [
        (16, 3, 16, 16, False, "relu", 1), (16, 3, 64, 24, False, "relu", 2),
        (24, 3, 72, 24, False, "relu", 1), (24, 5, 72, 40, True, "relu", 2),
        (40, 5, 120, 40, True, "relu", 1), (40, 5, 120, 40, True, "relu", 1),
        (40, 3, 240, 80, False, "hswish", 2), (80, 3, 200, 80, False, "hswish", 1),
        (80, 3, 184, 80, False, "hswish", 1), (80, 3, 184, 80, False, "hswish", 1),
        (80, 3, 480, 112, True, "hswish", 1), (112, 3, 672, 112, True, "hswish", 1),
        (112, 5, 672, 160, True, "hswish", 2), (160, 5, 960, 160, True, "hswish", 1),
        (160, 5, 960, 160, True, "hswish", 1),
    ],
    "mobilenet_v3_small": [
        (16, 3, 16, 16, True, "relu", 2), (16, 3, 72, 24, False, "relu", 2),
        (24, 3, 88, 24, False, "relu", 1), (24, 5, 96, 40, True, "hswish", 2),
        (40, 5, 240, 40, True, "hswish", 1), (40, 5, 240, 40, True, "hswish", 1),
        (40, 5, 120, 48, True, "hswish", 1), (48, 5, 144, 48, True, "hswish", 1),
        (48, 5, 288, 96, True, "hswish", 2), (96, 5, 576, 96, True, "hswish", 1),
        (96, 5, 576, 96, True, "hswish", 1),
    ],
}
HEAD = {"mobilenet_v3_large": (960, 1280), "mobilenet_v3_small": (576, 1024)}

NAMES = sorted(PUBLISHED)


@pytest.mark.parametrize("name", NAMES)
def test_published_params_and_gmacs(name: str) -> None:
    params, gmacs, gmacs_3 = PUBLISHED[name]
    c = cost(get_arch(name))
    assert c.params == params
    assert round(c.flops / 1e9, 2) == gmacs
    assert round(c.flops / 1e9, 3) == gmacs_3


@pytest.mark.parametrize("name", NAMES)
def test_blocks_are_torchvision_s(name: str) -> None:
    spec = get_arch(name)
    placed = blocks(spec)
    stem = {x.name: x for x in placed[0].layers}
    assert (stem["conv_stem"].c_out, stem["conv_stem"].stride, stem["act_stem"].act) == (
        16, 2, "hswish")
    rows = TORCHVISION[name]
    stage_blocks = placed[1:-1]
    assert len(stage_blocks) == len(rows)
    for block, (c_in, k, hidden, c_out, se, act, stride) in zip(stage_blocks, rows,
                                                                strict=True):
        by_name = {x.name: x for x in block.layers}
        dw = by_name["conv_dw"]
        assert (dw.c_in, dw.kernel, dw.stride, dw.groups) == (hidden, k, stride, hidden)
        assert by_name["conv_project"].c_out == c_out
        # the expansion conv is dropped when the hidden width equals the input's
        assert ("conv_expand" in by_name) == (hidden != c_in), block.name
        assert by_name["act_dw"].act == act
        assert ("add" in by_name) == (stride == 1 and c_in == c_out), block.name
        assert ("se_reduce" in by_name) == se, block.name
        if se:  # torchvision: _make_divisible(expanded // 4, 8), ReLU, Hardsigmoid
            assert by_name["se_reduce"].c_out == make_divisible(hidden // 4, 8)
            assert (by_name["se_act"].act, by_name["se_gate"].act) == ("relu", "hsigmoid")
    head = {x.name: x for x in placed[-1].layers}
    width, features = HEAD[name]
    assert (head["conv_head"].c_out, head["act_head"].act) == (width, "hswish")
    assert (head["features"].c_out, head["features"].bias) == (features, True)
    assert head["features_act"].act == "hswish"
    assert (head["fc"].c_in, head["fc"].c_out) == (features, 1000)


@pytest.mark.parametrize("name", NAMES)
def test_matches_fvcore_at_64(name: str) -> None:
    spec = ArchSpec.from_dict({**get_arch(name).to_dict(), "resolution": 64})
    ours, ref = cost(spec), fvcore_counts(spec)
    assert ours.flops == ref["flops"]
    assert ours.params == ref["params"]
    assert ours.activations - pool_activations(spec) == ref["activations"]
