from __future__ import annotations

import networkx as nx

from archdesign.layers import blocks, graph, layers
from archdesign.zoo import get_arch


def test_resnet50_expansion_shapes() -> None:
    spec = get_arch("resnet50")
    by_name = {x.name: x for x in layers(spec)}
    stem = by_name["stem.conv_stem"]
    assert (stem.c_in, stem.c_out, stem.h_out, stem.kernel, stem.stride) == (3, 64, 112, 7, 2)
    assert by_name["stem.pool"].h_out == 56
    first = by_name["s2.b0.conv_b"]  # stride on the 3x3 (ResNet v1.5)
    assert (first.c_in, first.c_out, first.stride, first.h_in, first.h_out) == (128, 128, 2,
                                                                                56, 28)
    assert by_name["s2.b0.proj"].stride == 2
    assert "s2.b1.proj" not in by_name
    fc = by_name["head.fc"]
    assert (fc.c_in, fc.c_out) == (2048, 1000)
    assert sum(1 for x in by_name.values() if x.op == "conv") == 53


def test_blocks_follow_stages_and_depths() -> None:
    spec = get_arch("mobilenet_v2")
    placed = blocks(spec)
    assert placed[0].name == "stem" and placed[-1].name == "head"
    assert len(placed) == 2 + sum(s.depth for s in spec.stages)
    # the first block (expansion 1) has no expand conv; later blocks do
    assert placed[1].layers[0].name == "conv_dw"
    assert placed[2].layers[0].name == "conv_expand"


def test_inputs_reference_earlier_layers_and_graph_is_a_dag() -> None:
    spec = get_arch("regnety_200mf")
    flat = layers(spec)
    for i, layer in enumerate(flat):
        assert all(-1 <= j < i for j in layer.inputs)
    g = graph(spec)
    assert nx.is_directed_acyclic_graph(g)
    assert g.number_of_nodes() == len(flat) + 1
    assert nx.has_path(g, "input", "head.fc")
    adds = [x for x in flat if x.op == "add"]
    assert adds and all(len(x.inputs) == 2 for x in adds)
    assert all(g.in_degree(x.name) == 2 for x in adds)


def test_convnext_downsamples_with_layernorm_and_2x2_conv() -> None:
    by_name = {x.name: x for x in layers(get_arch("convnext_tiny"))}
    assert by_name["stem.conv"].kernel == 4 and by_name["stem.conv"].h_out == 56
    down = by_name["s2.b0.down_conv"]
    assert (down.kernel, down.stride, down.c_in, down.c_out, down.h_out) == (2, 2, 96, 192, 28)
    assert by_name["s2.b0.down_norm"].op == "ln"
    assert "s1.b0.down_conv" not in by_name


def test_number_runs_numbers_each_distinct_block_once_in_plain_keys() -> None:
    import gc

    import numpy as np

    from archdesign.layers import (
        block_layers,
        block_runs,
        is_stage_key,
        number_runs,
        numbered_block,
    )
    from archdesign.spaces import get_space

    rng = np.random.default_rng(4)
    specs = [get_space(name).sample_spec(rng) for name in ("mobilenet", "ofa-mbv3")
             for _ in range(30)]
    specs += specs[:5]  # repeated networks reuse their blocks' numbers
    numbered = number_runs(specs)
    assert len(set(numbered.keys)) == len(numbered.keys)
    assert sum(numbered.counts) == len(numbered.numbers) == len(numbered.repeats)
    first = 0
    for spec, count in zip(specs, numbered.counts, strict=True):
        runs = block_runs(spec)
        assert count == len(runs)
        for run, j in zip(runs, range(first, first + count), strict=True):
            fn, args = numbered_block(numbered.keys[numbered.numbers[j]])
            assert fn is run.fn and args == run.args and hash(args) == hash(run.args)
            assert numbered.repeats[j] == run.repeat
        first += count
    stage_keys = [key for key in numbered.keys if is_stage_key(key)]
    every_run = [run for spec in specs for run in block_runs(spec)]
    assert set(stage_keys) == {run.args for run in every_run if run.fn is block_layers}
    assert {key for key in numbered.keys if not is_stage_key(key)} == {
        (run.fn, run.args) for run in every_run if run.fn is not block_layers}
    # plain tuples of plain values: the collector stops tracking them (named tuples it
    # never does, and many kept alive cost full collections)
    gc.collect()
    assert all(type(key) is tuple and not gc.is_tracked(key) for key in stage_keys)
