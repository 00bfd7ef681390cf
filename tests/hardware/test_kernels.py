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
