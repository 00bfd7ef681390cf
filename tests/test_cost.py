"""Costs checked against hand-derived formulas and against fvcore on the built module (the
published complexity of the zoo's networks: tests/test_zoo.py)."""

from __future__ import annotations

import pytest
from fvcore_reference import fvcore_counts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdesign.block_kinds import BlockArgs
from archdesign.cost import (
    cost,
    cost_by_layer,
    cost_by_stage,
    layer_activations,
    layer_flops,
    layer_params,
    peak_elements,
    pool_activations,
)
from archdesign.layers import Layer, block_layers, block_runs
from archdesign.spec import ArchSpec, HeadSpec, StageSpec, StemSpec
from archdesign.zoo import get_arch, list_archs

# -- hand-derived formulas, one layer type at a time ------------------------------------


def test_conv_counts_by_hand() -> None:
    conv = Layer("c", "conv", 64, 128, 56, 56, 28, 28, kernel=3, stride=2, padding=1)
    assert layer_flops(conv) == 3 * 3 * 64 * 128 * 28 * 28 == 57_802_752
    assert layer_params(conv) == 3 * 3 * 64 * 128 == 73_728
    assert layer_activations(conv) == 128 * 28 * 28


def test_grouped_and_depthwise_conv_by_hand() -> None:
    grouped = Layer("g", "conv", 96, 96, 14, 14, 14, 14, kernel=3, padding=1, groups=12)
    assert layer_flops(grouped) == 9 * 96 * 96 * 14 * 14 // 12 == 1_354_752
    assert layer_params(grouped) == 9 * 8 * 96
    depthwise = Layer("d", "conv", 32, 32, 7, 7, 7, 7, kernel=7, padding=3, groups=32,
                      bias=True)
    assert layer_flops(depthwise) == 49 * 32 * 49
    assert layer_params(depthwise) == 49 * 32 + 32


def test_linear_norm_scale_pool_by_hand() -> None:
    fc = Layer("fc", "linear", 512, 1000, 1, 1, 1, 1, bias=True)
    assert (layer_flops(fc), layer_params(fc), layer_activations(fc)) == (512_000, 513_000,
                                                                         1000)
    bn = Layer("bn", "bn", 64, 64, 8, 8, 8, 8)
    ln = Layer("ln", "ln", 96, 96, 8, 8, 8, 8)
    scale = Layer("s", "scale", 96, 96, 8, 8, 8, 8)
    assert (layer_params(bn), layer_params(ln), layer_params(scale)) == (128, 192, 96)
    assert layer_flops(bn) == layer_flops(ln) == layer_activations(bn) == 0
    pool = Layer("p", "maxpool", 64, 64, 112, 112, 56, 56, kernel=3, stride=2, padding=1)
    assert layer_activations(pool) == 64 * 56 * 56 and layer_flops(pool) == 0


def test_basic_block_totals_by_hand() -> None:
    # A downsampling basic block 64 -> 128 at 56x56 input: two 3x3 convs, a 1x1 projection.
    layers = block_layers(*BlockArgs("basic", 64, 128, 2, 3, 56, 56))
    flops = sum(layer_flops(x) for x in layers)
    params = sum(layer_params(x) for x in layers)
    hw = 28 * 28
    assert flops == 9 * 64 * 128 * hw + 9 * 128 * 128 * hw + 64 * 128 * hw
    assert params == 9 * 64 * 128 + 9 * 128 * 128 + 64 * 128 + 3 * 2 * 128


def test_se_bottleneck_by_hand() -> None:
    # RegNetY block 48 -> 104, bottleneck 104 (ratio 1), group width 8, SE 0.25 of 48 = 12.
    layers = block_layers(*BlockArgs("bottleneck", 48, 104, 2, 3, 56, 56, group_width=8,
                                    se_ratio=0.25))
    by_name = {x.name: x for x in layers}
    assert by_name["conv_b"].groups == 13
    assert by_name["se_reduce"].c_out == 12
    params = sum(layer_params(x) for x in layers)
    expected = (48 * 104 + 2 * 104  # conv_a + bn
                + 9 * 8 * 104 + 2 * 104  # grouped conv_b + bn
                + 104 * 12 + 12 + 12 * 104 + 104  # SE with biases
                + 104 * 104 + 2 * 104  # conv_c + bn
                + 48 * 104 + 2 * 104)  # projection + bn
    assert params == expected


def test_peak_memory_of_a_residual_block_by_hand() -> None:
    # Identity basic block 16 -> 16 at 8x8: while conv_b runs, the block input (held for
    # the residual add), conv_a's output and conv_b's output are live: 3 * 16 * 64.
    layers = block_layers(*BlockArgs("basic", 16, 16, 1, 3, 8, 8))
    assert peak_elements(layers) == 3 * 16 * 64


def test_peak_memory_of_an_inverted_residual_by_hand() -> None:
    # 16 -> 16 at 10x10, expansion 6: while the depthwise conv runs, the input (held),
    # the expanded map and the depthwise output are live: 16*100 + 2 * 96*100.
    layers = block_layers(*BlockArgs("inverted_residual", 16, 16, 1, 3, 10, 10, expansion=6.0,
                                    activation="relu6"))
    assert peak_elements(layers) == 16 * 100 + 2 * 96 * 100


def test_batch_and_dtype_scale_memory_not_flops() -> None:
    spec = get_arch("resnet18")
    one, many = cost(spec), cost(spec, batch=8, dtype="float16")
    assert many.flops == one.flops and many.params == one.params
    assert many.peak_activation_bytes == one.peak_activation_bytes * 8 // 2
    # ResNet-18's peak is the stem's max pool: its 64x112x112 input and 64x56x56 output
    # (more than the stem conv's 3x224x224 input and 64x112x112 output).
    assert one.peak_activation_bytes == (64 * 112 * 112 + 64 * 56 * 56) * 4


def test_stage_and_layer_views_sum_to_totals() -> None:
    spec = get_arch("efficientnet_b0")
    total = cost(spec)
    stages = cost_by_stage(spec)
    assert stages[0][0] == "stem" and stages[-1][0] == "head"
    assert sum(c.flops for _, c in stages) == total.flops
    assert sum(c.params for _, c in stages) == total.params
    layers = cost_by_layer(spec)
    assert sum(x.flops for x in layers) == total.flops
    assert sum(x.bytes_moved for x in layers) == total.bytes_moved


def test_bad_batch_and_dtype_raise() -> None:
    with pytest.raises(ValueError, match="batch"):
        cost(get_arch("resnet18"), batch=0)
    with pytest.raises(ValueError, match="dtype"):
        cost(get_arch("resnet18"), dtype="float8")


# -- exact figures of this cost model (published figures: tests/test_zoo.py) --------------

GOLDEN = {  # exact figures of this cost model, to catch any drift
    "resnet50": (4_089_184_256, 25_557_032, 11_315_688, 7_225_344),
    "mobilenet_v2": (300_774_272, 3_504_872, 6_679_112, 6_021_120),
    "convnext_tiny": (4_455_531_264, 28_589_128, 13_435_624, 7_225_344),
    "regnetx_200mf": (199_039_872, 2_684_792, 2_164_056, 3_110_912),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_exact_figures(name: str) -> None:
    c = cost(get_arch(name))
    assert (c.flops, c.params, c.activations, c.peak_activation_bytes) == GOLDEN[name]


# -- the analytic counts equal fvcore's on the built module ------------------------------


def _assert_matches_fvcore(spec: ArchSpec) -> None:
    ours = cost(spec)
    ref = fvcore_counts(spec)
    assert ours.flops == ref["flops"]
    assert ours.params == ref["params"]
    # fvcore does not count pooling outputs as activations: the one documented difference.
    assert ours.activations - pool_activations(spec) == ref["activations"]


# Tracing the deep networks at 224 takes most of the suite's time; equality is checked at
# the published resolution for the small ones and at 64 (every stage still > 1 pixel) for
# the rest.
_AT_224 = {"resnet18", "mobilenet_v2", "efficientnet_b0", "regnetx_200mf"}
# The deepest and widest (each over 5 s to build and trace) are traced with every stage cut
# to its first two blocks. That keeps every distinct block: a stage's later blocks are all
# identical to its second (`block_runs`, which the cost model sums), so the check covers
# every block structure of these networks, while the full-depth ones above check that
# repeated blocks are counted as often as they are built.
_FIRST_TWO_BLOCKS = {"resnet152", "resnext101_32x4d", "resnext152_32x4d", "regnetx_12gf",
                     "regnety_12gf", "regnetx_16gf", "regnety_16gf", "regnetx_32gf",
                     "regnety_32gf", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5",
                     "efficientnet_lite4", "convnext_small", "convnext_base"}


def _first_two_blocks(spec: ArchSpec) -> ArchSpec:
    data = spec.to_dict()
    data["stages"] = [{**s, "depth": min(s["depth"], 2)} for s in data["stages"]]
    return ArchSpec.from_dict(data)


@pytest.mark.parametrize("name", list_archs())
def test_zoo_matches_fvcore(name: str) -> None:
    spec = get_arch(name)
    if name not in _AT_224:
        spec = ArchSpec.from_dict({**spec.to_dict(), "resolution": 64})
    if name in _FIRST_TWO_BLOCKS:
        cut = _first_two_blocks(spec)
        assert {r.args for r in block_runs(cut)} == {r.args for r in block_runs(spec)}
        spec = cut
    _assert_matches_fvcore(spec)


def _one_stage(block: str, **stage: object) -> ArchSpec:
    convnext = block == "convnext"
    return ArchSpec(
        stages=(StageSpec(block, depth=2, **stage),),  # type: ignore[arg-type]
        stem=StemSpec(width=16, kernel=4 if convnext else 3, stride=4 if convnext else 2),
        head=HeadSpec(num_classes=10, width=0 if convnext else 32), resolution=32)


@pytest.mark.parametrize("spec", [
    _one_stage("basic", width=24, stride=2, kernel=5),
    _one_stage("bottleneck", width=32, stride=2, kernel=3, expansion=0.5),
    _one_stage("bottleneck", width=48, stride=1, kernel=5, expansion=1.0, group_width=8,
               se_ratio=0.25),
    _one_stage("inverted_residual", width=24, stride=2, kernel=7, expansion=4.0,
               activation="hswish"),
    _one_stage("inverted_residual", width=16, stride=1, kernel=3, expansion=1.0,
               se_ratio=0.25, activation="silu"),
    _one_stage("convnext", width=32, stride=2, kernel=7, expansion=4.0, activation="gelu"),
], ids=["basic", "bottleneck", "regnety", "inverted_residual", "ir-se-no-expand",
        "convnext"])
def test_every_block_kind_matches_fvcore(spec: ArchSpec) -> None:
    _assert_matches_fvcore(spec)


@st.composite
def random_specs(draw: st.DrawFn) -> ArchSpec:
    block = draw(st.sampled_from(["basic", "bottleneck", "inverted_residual", "convnext"]))
    n_stages = draw(st.integers(1, 3))
    stages = []
    for _ in range(n_stages):
        width = 8 * draw(st.integers(1, 6))
        expansion = {"basic": 1.0, "bottleneck": draw(st.sampled_from([0.25, 0.5, 1.0])),
                     "inverted_residual": draw(st.sampled_from([1.0, 3.0, 6.0])),
                     "convnext": draw(st.sampled_from([2.0, 4.0]))}[block]
        inner = round(width * expansion)
        group_width = (draw(st.sampled_from([None, *[g for g in (2, 4, 8) if inner % g == 0]]))
                       if block == "bottleneck" else None)
        se = (draw(st.sampled_from([0.0, 0.25]))
              if block in ("bottleneck", "inverted_residual") else 0.0)
        stages.append(StageSpec(block, width, draw(st.integers(1, 2)),  # type: ignore[arg-type]
                                stride=draw(st.sampled_from([1, 2])),
                                kernel=draw(st.sampled_from([1, 3, 5])), expansion=expansion,
                                group_width=group_width, se_ratio=se,
                                activation="gelu" if block == "convnext" else "relu"))
    convnext = block == "convnext"
    return ArchSpec(stages=tuple(stages),
                    stem=StemSpec(width=8 * draw(st.integers(1, 4)),
                                  kernel=2 if convnext else 3, stride=2,
                                  pool=draw(st.booleans()) and not convnext),
                    head=HeadSpec(num_classes=draw(st.integers(2, 20)),
                                  width=0 if convnext else draw(st.sampled_from([0, 32]))),
                    resolution=draw(st.sampled_from([32, 40, 48])))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_specs())
def test_random_specs_match_fvcore(spec: ArchSpec) -> None:
    _assert_matches_fvcore(spec)


# -- the batched path equals the one-spec path --------------------------------------------


def test_cost_many_equals_cost_spec_by_spec() -> None:
    import numpy as np

    from archdesign.cost import cost_many
    from archdesign.spaces import get_space, list_spaces

    rng = np.random.default_rng(11)
    specs = [get_arch(name) for name in list_archs()]
    specs += [get_space(name).sample_spec(rng) for name in list_spaces() for _ in range(60)]
    table = cost_many(specs, batch=2, dtype="float16")
    for i, spec in enumerate(specs):
        expected = cost(spec, batch=2, dtype="float16")
        assert {k: int(v[i]) for k, v in table.items()} == {
            "flops": expected.flops, "params": expected.params,
            "activations": expected.activations,
            "peak_activation_bytes": expected.peak_activation_bytes,
            "bytes_moved": expected.bytes_moved}, spec


def test_cost_many_of_no_specs_is_empty_arrays() -> None:
    from archdesign.cost import cost_many

    table = cost_many([])
    assert sorted(table) == ["activations", "bytes_moved", "flops", "params",
                             "peak_activation_bytes"]
    assert all(v.shape == (0,) and v.dtype.kind == "i" for v in table.values())


def test_block_structure_on_arrays_is_the_structure_of_each_block() -> None:
    # cost_many decides the structures of a group of blocks on arrays and splits the
    # group by them: each entry must be the structure of that block alone
    import numpy as np

    from archdesign.block_kinds import NUMERIC_FIELDS, block_structure

    rng = np.random.default_rng(2)
    for kind, hidden, groups in (("inverted_residual", None, None), ("irf", None, None),
                                 ("inverted_residual", 24, None), ("bottleneck", None, 8),
                                 ("basic", None, None), ("convnext", None, None),
                                 ("skip", None, None)):
        blocks = [BlockArgs(kind, int(rng.choice([8, 16, 24])), int(rng.choice([16, 24])),
                            int(rng.choice([1, 2])), 3, 8, 8,
                            float(rng.choice([1.0, 1.5, 6.0])), hidden, groups,
                            float(rng.choice([0.0, 0.25])),
                            pointwise_groups=int(rng.choice([1, 2])))
                  for _ in range(40)]
        columns = {name: np.array([getattr(b, name) for b in blocks])
                   for name in NUMERIC_FIELDS if getattr(blocks[0], name) is not None}
        batched = blocks[0]._replace(**columns)
        choices = block_structure(batched)
        for i, block in enumerate(blocks):
            assert tuple(bool(np.broadcast_to(x, len(blocks))[i]) for x in choices) == \
                block_structure(block), block
        # the rules must really vary across the group for the check to mean anything
        assert any(len(set(np.broadcast_to(x, len(blocks)).tolist())) > 1 for x in choices)
