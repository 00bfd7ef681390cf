from __future__ import annotations

from archdesign.hardware.kernels import COL, OP_CLASS_INDEX, FusionRules, fuse, network_kernels
from archdesign.layers import blocks, layers
from archdesign.zoo import get_arch


def _names(kernels):
    return [[layer.name for layer in k] for k in kernels]


def test_basic_block_fuses_conv_bn_act_and_residual_add():
    spec = get_arch("resnet18")
    block = blocks(spec)[1]  # s1.b0: identity shortcut
    assert _names(fuse(block.layers, FusionRules())) == [
        ["conv_a", "bn_a", "act_a"], ["conv_b", "bn_b", "add", "act_out"]]
    assert _names(fuse(block.layers, FusionRules(residual_add=False))) == [
        ["conv_a", "bn_a", "act_a"], ["conv_b", "bn_b"], ["add"], ["act_out"]]
    assert len(fuse(block.layers, FusionRules(False, False))) == len(block.layers)


def test_projection_add_fuses_into_the_conv_that_runs_last():
    block = blocks(get_arch("resnet18"))[3]  # s2.b0: stride 2, projection
    assert _names(fuse(block.layers, FusionRules())) == [
        ["conv_a", "bn_a", "act_a"], ["conv_b", "bn_b"], ["proj", "proj_bn", "add", "act_out"]]


def test_se_and_convnext_grouping():
    ir = next(b for b in blocks(get_arch("efficientnet_b0")) if b.name == "s2.b1")
    assert _names(fuse(ir.layers, FusionRules())) == [
        ["conv_expand", "bn_expand", "act_expand"], ["conv_dw", "bn_dw", "act_dw"],
        ["se_pool"], ["se_reduce", "se_act"], ["se_expand", "se_gate"], ["se_scale"],
        ["conv_project", "bn_project", "add"]]
    cx = blocks(get_arch("convnext_tiny"))[1]
    assert _names(fuse(cx.layers, FusionRules())) == [
        ["dw"], ["norm"], ["pw_expand", "act"], ["pw_project", "layer_scale", "add"]]


def test_every_layer_but_flatten_lands_in_exactly_one_kernel():
    spec = get_arch("mobilenet_v2")
    for rules in (FusionRules(), FusionRules(False, False), FusionRules(True, False)):
        names, rows = network_kernels(spec, rules)
        fused = sum(len(n.split("+")) for n in names)
        assert fused == sum(1 for x in layers(spec) if x.op != "flatten")
        assert rows.shape == (len(names), len(COL))


def test_kernel_rows_carry_flops_and_residual_reads():
    spec = get_arch("resnet18")
    _, rows = network_kernels(spec, FusionRules())
    convs = rows[rows[:, COL["op_class"]] == OP_CLASS_INDEX["conv"]]
    assert convs[:, COL["flops"]].sum() == 1_814_073_344 - 512_000  # all MACs but the fc
    stem = rows[0]
    assert stem[COL["in_elements"]] == 3 * 224 * 224
    assert stem[COL["out_elements"]] == 64 * 112 * 112
    assert rows[1][COL["op_class"]] == OP_CLASS_INDEX["pool"]
    block = rows[3]  # s1.b0 conv_b + add: reads its input and the shortcut
    assert block[COL["fused_add"]] == 1
    assert block[COL["in_elements"]] == 2 * 64 * 56 * 56


# -- the batched path equals the one-block path ---------------------------------------------


def test_kernels_many_equals_block_kernels_for_every_space_and_kind():
    import numpy as np

    from archdesign.block_kinds import BLOCK_KINDS, BlockArgs
    from archdesign.hardware.kernels import block_kernels, kernels_many
    from archdesign.layers import is_stage_key, number_runs, numbered_block
    from archdesign.spaces import get_space, list_spaces
    from archdesign.zoo import list_archs

    rng = np.random.default_rng(5)
    specs = [get_arch(name) for name in list_archs()]
    specs += [get_space(name).sample_spec(rng) for name in list_spaces() for _ in range(40)]
    keys = number_runs(specs).keys
    # one structure, two op classes: a bottleneck's kxk conv is depthwise at group width 1
    keys += [tuple(BlockArgs("bottleneck", 16, 16, 1, 3, 8, 8, 1.0, None, g)) for g in (1, 8)]
    assert {key[0] for key in keys if is_stage_key(key)} == set(BLOCK_KINDS)
    for rules in (FusionRules(), FusionRules(residual_add=False), FusionRules(False, False)):
        rows, sizes = kernels_many(keys, rules)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        assert len(rows) == starts[-1]
        for j, key in enumerate(keys):
            expected = block_kernels(*numbered_block(key), rules).rows
            assert np.array_equal(rows[starts[j]:starts[j + 1]], expected), key
    rows, sizes = kernels_many(keys[-2:], FusionRules())
    dw = rows[:sizes[0]][:, COL["op_class"]].tolist()
    dense = rows[sizes[0]:][:, COL["op_class"]].tolist()
    assert OP_CLASS_INDEX["depthwise"] in dw and OP_CLASS_INDEX["depthwise"] not in dense
