"""DeepMAD score and effectiveness against values derived by hand from the formulas."""

from __future__ import annotations

import math

import pytest

from archdesign.errors import InputError
from archdesign.objectives import DeepMAD, effectiveness, get_objective, groups
from archdesign.spec import ArchSpec, StageSpec, StemSpec
from archdesign.zoo import get_arch, list_archs

L = math.log


def tiny_basic() -> ArchSpec:
    # stem 3->16 3x3/2 at 32px (-> 16px); stage 1: basic 16, stride 1; stage 2: basic 32, /2
    return ArchSpec(stages=(StageSpec("basic", 16, 1, 1), StageSpec("basic", 32, 1, 2)),
                    stem=StemSpec(16, 3, 2), resolution=32)


def test_basic_net_by_hand() -> None:
    spec = tiny_basic()
    s0 = 0.5 * (L(27) + 2 * L(16 * 9))  # stem, conv_a, conv_b of stage 1
    s1 = s0 + 0.5 * (L(16 * 9) + L(32 * 9))  # stage 2 (proj not counted)
    g = groups(spec)
    assert [(x.channels, x.resolution, x.convs) for x in g] == [(16, 16, 3), (32, 8, 5)]
    assert g[0].entropy == pytest.approx(s0)
    assert g[1].entropy == pytest.approx(s1)
    h0 = (L(16) + L(16**2)) * s0
    h1 = (L(32) + L(8**2)) * s1
    # two groups: default alpha (1, 8); uniform depths: penalty 10·exp(0)
    assert DeepMAD().score(spec) == pytest.approx(h0 + 8 * h1 - 10)
    assert DeepMAD(alpha=(2, 3), beta=0).score(spec) == pytest.approx(2 * h0 + 3 * h1)
    rho0 = 3 / (27 * 144**2) ** (1 / 3)
    rho1 = 5 / (27 * 144**3 * 288) ** (1 / 5)
    assert effectiveness(spec) == pytest.approx(max(rho0, rho1))


def test_bottleneck_grouped_se_by_hand() -> None:
    # bottleneck 64, inner 32, group width 8 (4 groups), SE; 16px input after the stem
    spec = ArchSpec(stages=(StageSpec("bottleneck", 64, 2, 2, 5, 0.5, group_width=8,
                                      se_ratio=0.25),),
                    stem=StemSpec(16, 3, 2), resolution=32)
    first = L(16) + L(8 * 25) + L(32)  # conv_a (c_in 16), conv_b (8 per group, 5x5), conv_c
    second = L(64) + L(8 * 25) + L(32)
    total = 0.5 * (L(27) + first + second)
    g = groups(spec)
    assert [(x.channels, x.resolution, x.convs) for x in g] == [(16, 16, 1), (64, 8, 7)]
    assert g[-1].entropy == pytest.approx(total)
    expected = (L(16) + 2 * L(16)) * 0.5 * L(27) + 8 * (L(64) + 2 * L(8)) * total - 10
    assert DeepMAD().score(spec) == pytest.approx(expected)


def test_inverted_residual_depthwise_and_depth_penalty() -> None:
    spec = ArchSpec(stages=(StageSpec("inverted_residual", 16, 1, 1, 3, 1.0),
                            StageSpec("inverted_residual", 24, 3, 2, 5, 6.0)),
                    stem=StemSpec(16, 3, 2), resolution=32)
    # stage 1: expansion 1 -> no expand conv; dw (log 9), project (c_in 16)
    s0 = 0.5 * (L(27) + L(9) + L(16))
    # stage 2, block 1: expand 16->96, dw 5x5, project 96->24; blocks 2,3: expand 24->144
    s1 = s0 + 0.5 * (L(16) + L(25) + L(96) + 2 * (L(24) + L(25) + L(144)))
    objective = DeepMAD(beta=10)
    penalty = 10 * math.exp(1.0)  # std of depths (1, 3) is 1
    expected = (L(16) + 2 * L(16)) * s0 + 8 * (L(24) + 2 * L(8)) * s1 - penalty
    assert objective.score(spec) == pytest.approx(expected)
    assert DeepMAD(skip_first_stage_depth=True).depth_penalty([1, 3]) == pytest.approx(10)


def test_convnext_counts_downsampling_convs() -> None:
    spec = ArchSpec(stages=(StageSpec("convnext", 32, 1, 1, 7, 4.0, activation="gelu"),
                            StageSpec("convnext", 64, 1, 2, 7, 4.0, activation="gelu")),
                    stem=StemSpec(32, 4, 4), resolution=32)
    block = L(49) + L(32) + L(128)  # dw 7x7, pw_expand (c_in 32), pw_project (c_in 128)
    s0 = 0.5 * (L(3 * 16) + block)
    s1 = s0 + 0.5 * (L(32 * 4) + L(49) + L(64) + L(256))  # down_conv 2x2, then the block
    assert [x.entropy for x in groups(spec)] == pytest.approx([s0, s1])


def test_reference_resnet50_groups_and_rho() -> None:
    spec = get_arch("resnet50")
    g = groups(spec)
    assert [(x.channels, x.resolution) for x in g] == [(256, 56), (512, 28), (1024, 14),
                                                       (2048, 7)]
    assert [x.convs for x in g] == [1 + 9, 1 + 21, 1 + 39, 1 + 48]
    assert 0.05 < effectiveness(spec) < 0.3


@pytest.mark.parametrize("name", list_archs())
def test_every_zoo_arch_scores(name: str) -> None:
    details = get_objective("deepmad").details(get_arch(name))
    # (the depth penalty makes very uneven nets negative: ResNet-152's is 10·e^13.6)
    assert math.isfinite(details["score"])
    assert all(g["entropy"] > 0 for g in details["groups"])
    assert details["rho"] == pytest.approx(effectiveness(get_arch(name)))


def test_bad_settings_are_input_errors() -> None:
    with pytest.raises(InputError, match="3 weights given but the network has 2 groups"):
        DeepMAD(alpha=(1, 1, 1)).score(tiny_basic())
    with pytest.raises(InputError, match="unknown objective 'nope'"):
        get_objective("nope")
    with pytest.raises(InputError, match="beta"):
        DeepMAD(beta=-1)


def test_groups_many_equals_groups_on_every_space() -> None:
    """The batched path (each structure's blocks summarized at once on arrays) gives the
    figures of one block at a time, exactly, and memoizes the groups it finds."""
    import numpy as np

    from archdesign.objectives import deepmad
    from archdesign.spaces import get_space, list_spaces

    rng = np.random.default_rng(3)
    specs = [get_arch(name) for name in list_archs()]
    specs += [get_space(name).sample_spec(rng) for name in list_spaces() for _ in range(40)]
    deepmad.clear_memos()
    expected = [groups(spec) for spec in specs]
    entropy = dict(deepmad._ENTROPY)
    deepmad.clear_memos()
    assert deepmad.groups_many(specs) == expected
    assert [groups(spec) for spec in specs] == expected
    for key, figures in entropy.items():
        assert deepmad._ENTROPY[key] == figures
        assert [type(x) for x in deepmad._ENTROPY[key]] == [type(x) for x in figures]
