"""One contract every block kind of :data:`archdesign.block_kinds.BLOCK_KINDS` must keep.

The suite iterates the registry: a newly registered kind gets a failing case until it has
examples in :data:`EXAMPLES`. For each example (small specs, resolution 32-48) the kind's
expansion must agree with everything derived from it:

- fvcore on the built module: FLOPs, params, activations (less pooling outputs, the one
  documented difference);
- the built module's parameter count, and its forward pass (output shape);
- JSON and YAML round trips of the spec;
- ``cost_many`` (the batched numpy expansion) against ``cost``;
- DeepMAD's entropy groups against an independent computation from ``layers(spec)``;
- peak memory: positive for every block that runs a layer, zero for identity blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from fvcore_reference import fvcore_counts

from archdesign.block_kinds import BLOCK_KINDS
from archdesign.build import build
from archdesign.cost import block_cost, cost, cost_many, pool_activations
from archdesign.layers import blocks, layers
from archdesign.objectives.deepmad import DeepMAD, groups
from archdesign.ops import ROLES
from archdesign.spec import ArchSpec, BlockSpec, HeadSpec, StageSpec, StemSpec

NUM_CLASSES = 10


def _net(*stages: StageSpec, stem: StemSpec | None = None, head: HeadSpec | None = None,
         resolution: int = 32) -> ArchSpec:
    return ArchSpec(stages=stages, stem=stem or StemSpec(width=16),
                    head=head or HeadSpec(num_classes=NUM_CLASSES), resolution=resolution)


_PATCHIFY = StemSpec(width=32, kernel=4, stride=4)  # ConvNeXt stem: 32 -> 8x8
_MNV3_HEAD = HeadSpec(num_classes=NUM_CLASSES, width=96, features=128, activation="hswish")


# Each kind: named variants covering stride 1/2, width change or not, SE on/off in both
# styles (where the kind has SE), grouped pointwise convs (irf), heterogeneous stages
# (per-block fields, other kinds mixed in), 'none' activations, a MobileNetV3 head.
EXAMPLES: dict[str, dict[str, Callable[[], ArchSpec]]] = {
    "basic": {
        "s1-same": lambda: _net(StageSpec("basic", 16, 2)),
        "s2-wider-k5": lambda: _net(StageSpec("basic", 24, 2, stride=2, kernel=5)),
        "hetero": lambda: _net(StageSpec("basic", 16, 3, stride=2, blocks=(
            BlockSpec(kernel=3), BlockSpec(kernel=5, activation="hswish"),
            BlockSpec(kernel=1)))),
        "mnv3-head": lambda: _net(StageSpec("basic", 24, 1, stride=2), head=_MNV3_HEAD),
    },
    "bottleneck": {
        "s1-same": lambda: _net(StageSpec("bottleneck", 32, 2, expansion=0.25),
                                stem=StemSpec(width=32)),
        "s2-wider-grouped": lambda: _net(StageSpec("bottleneck", 48, 2, stride=2,
                                                   expansion=1.0, group_width=8)),
        "se-efficientnet": lambda: _net(StageSpec("bottleneck", 32, 2, stride=2,
                                                  expansion=0.5, se_ratio=0.25)),
        "se-mobilenetv3": lambda: _net(StageSpec("bottleneck", 32, 2, kernel=5,
                                                 se_ratio=0.25, se_style="mobilenetv3",
                                                 activation="hswish")),
        "hetero": lambda: _net(StageSpec("bottleneck", 32, 3, stride=2, expansion=0.5,
                                         blocks=(BlockSpec(hidden_width=16),
                                                 BlockSpec(hidden_width=24, kernel=5),
                                                 BlockSpec(block="basic", expansion=1.0)))),
    },
    "inverted_residual": {
        "s1-same-no-expand": lambda: _net(StageSpec("inverted_residual", 16, 2)),
        "s2-wider-e4": lambda: _net(StageSpec("inverted_residual", 24, 2, stride=2, kernel=5,
                                              expansion=4.0, activation="relu6")),
        "se-efficientnet": lambda: _net(StageSpec("inverted_residual", 24, 2, expansion=6.0,
                                                  se_ratio=0.25, activation="silu")),
        "se-mobilenetv3": lambda: _net(StageSpec("inverted_residual", 24, 2, stride=2,
                                                 hidden_width=40, se_ratio=0.25,
                                                 se_style="mobilenetv3",
                                                 activation="hswish")),
        "hetero": lambda: _net(StageSpec("inverted_residual", 24, 3, stride=2, expansion=4.0,
                                         blocks=(BlockSpec(hidden_width=32),
                                                 BlockSpec(expansion=3.0, kernel=5,
                                                           se_ratio=0.25),
                                                 BlockSpec(block="skip")))),
        "mnv3-head": lambda: _net(StageSpec("inverted_residual", 24, 2, stride=2,
                                            expansion=3.0, activation="hswish"),
                                  stem=StemSpec(width=16, activation="hswish"),
                                  head=_MNV3_HEAD, resolution=48),
    },
    "irf": {
        "s1-same-e1": lambda: _net(StageSpec("irf", 16, 2)),
        "s2-wider-g2": lambda: _net(StageSpec("irf", 32, 2, stride=2, expansion=3.0,
                                              pointwise_groups=2)),
        "se-efficientnet-g2": lambda: _net(StageSpec("irf", 32, 2, expansion=2.0,
                                                     se_ratio=0.25, pointwise_groups=2)),
        "se-mobilenetv3-g4": lambda: _net(StageSpec("irf", 32, 2, stride=2, expansion=4.0,
                                                    se_ratio=0.25, se_style="mobilenetv3",
                                                    pointwise_groups=4,
                                                    activation="hswish")),
        "hetero": lambda: _net(StageSpec("irf", 32, 3, stride=2, expansion=3.0, blocks=(
            BlockSpec(pointwise_groups=2, expansion=2.0),
            BlockSpec(pointwise_groups=4, kernel=5),
            BlockSpec(pointwise_groups=1, hidden_width=24)))),
    },
    "convnext": {
        "s1-same": lambda: _net(StageSpec("convnext", 32, 2, kernel=7, expansion=4.0,
                                          activation="gelu"), stem=_PATCHIFY),
        "s2-wider": lambda: _net(StageSpec("convnext", 32, 1, kernel=7, expansion=4.0,
                                           activation="gelu"),
                                 StageSpec("convnext", 48, 2, stride=2, kernel=5,
                                           expansion=4.0, activation="gelu"),
                                 stem=_PATCHIFY),
        "hetero": lambda: _net(StageSpec("convnext", 32, 2, expansion=4.0, activation="gelu",
                                         blocks=(BlockSpec(kernel=3, expansion=2.0),
                                                 BlockSpec(kernel=7))), stem=_PATCHIFY),
        "head-features-no-bias": lambda: _net(
            StageSpec("convnext", 32, 1, kernel=3, expansion=2.0, activation="gelu"),
            stem=_PATCHIFY, head=HeadSpec(num_classes=NUM_CLASSES, features=64,
                                          features_bias=False)),
    },
    "skip": {
        "identity": lambda: _net(StageSpec("inverted_residual", 16, 1, expansion=2.0),
                                 StageSpec("skip", 16, 2)),
        "s2-wider": lambda: _net(StageSpec("skip", 32, 2, stride=2),
                                 StageSpec("inverted_residual", 32, 1, expansion=2.0)),
        "act-none": lambda: _net(StageSpec("skip", 24, 1, activation="none"),
                                 StageSpec("basic", 24, 1, stride=2)),
        "hetero": lambda: _net(StageSpec("bottleneck", 32, 2, stride=2, expansion=0.5,
                                         blocks=(BlockSpec(), BlockSpec(block="skip"))),
                               StageSpec("skip", 48, 2, blocks=(
                                   BlockSpec(activation="hswish"), BlockSpec()))),
        "mnv3-head": lambda: _net(StageSpec("skip", 24, 1, stride=2, activation="hswish"),
                                  head=_MNV3_HEAD),
    },
}


def _cases() -> list[Any]:
    cases = []
    for kind in BLOCK_KINDS:  # the registry, so that a new kind is covered
        variants = EXAMPLES.get(kind)
        if not variants:
            cases.append(pytest.param(kind, None, id=f"{kind}-NO-EXAMPLES"))
            continue
        cases += [pytest.param(kind, name, id=f"{kind}-{name}") for name in variants]
    return cases


CASES = _cases()


def _spec(kind: str, variant: str | None) -> ArchSpec:
    if variant is None:
        pytest.fail(f"block kind {kind!r} is registered in BLOCK_KINDS but has no examples "
                    f"in tests/test_block_kinds.py EXAMPLES: add a few variants")
    return EXAMPLES[kind][variant]()


def _kinds(spec: ArchSpec) -> set[str]:
    return {c.kind for stage in spec.stages for c in stage.block_configs()}


def test_examples_name_registered_kinds_only() -> None:
    assert set(EXAMPLES) <= set(BLOCK_KINDS), "examples of a kind that is not registered"


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_example_uses_its_kind(kind: str, variant: str | None) -> None:
    spec = _spec(kind, variant)
    assert kind in _kinds(spec)
    for layer in layers(spec):
        assert layer.role in ROLES, layer


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_costs_match_fvcore(kind: str, variant: str | None) -> None:
    spec = _spec(kind, variant)
    ours, ref = cost(spec), fvcore_counts(spec)
    assert ours.flops == ref["flops"]
    assert ours.params == ref["params"]
    # fvcore does not count pooling outputs as activations: the one documented difference
    assert ours.activations - pool_activations(spec) == ref["activations"]


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_built_module_params_and_forward(kind: str, variant: str | None) -> None:
    spec = _spec(kind, variant)
    model = build(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == cost(spec).params
    with torch.no_grad():
        out = model(torch.randn(2, spec.in_channels, spec.resolution, spec.resolution))
    assert out.shape == (2, spec.head.num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_json_and_yaml_round_trip(kind: str, variant: str | None) -> None:
    spec = _spec(kind, variant)
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec


def _as_dict(c: Any) -> dict[str, int]:
    return {"flops": c.flops, "params": c.params, "activations": c.activations,
            "peak_activation_bytes": c.peak_activation_bytes, "bytes_moved": c.bytes_moved}


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_cost_many_equals_cost(kind: str, variant: str | None) -> None:
    spec = _spec(kind, variant)
    table = cost_many([spec])
    assert {k: int(v[0]) for k, v in table.items()} == _as_dict(cost(spec))


def test_cost_many_of_all_examples_equals_cost_spec_by_spec() -> None:
    # one batch mixing every kind and variant: structures are grouped across specs
    specs = [make() for variants in EXAMPLES.values() for make in variants.values()]
    table = cost_many(specs, batch=3, dtype="float16")
    for i, spec in enumerate(specs):
        expected = _as_dict(cost(spec, batch=3, dtype="float16"))
        assert {k: int(v[i]) for k, v in table.items()} == expected, spec


def _reference_groups(spec: ArchSpec) -> list[dict[str, float]]:
    """DeepMAD's groups, recomputed from the flat layer list: entropy terms
    ½·log(c_in/g·k²) of convs of role main/head, cut before every stage block that
    downsamples (the stem opens the first group, the head joins the last)."""
    by_block: dict[str, list[Any]] = {}
    for layer in layers(spec):
        by_block.setdefault(layer.name.rsplit(".", 1)[0], []).append(layer)
    out: list[dict[str, float]] = []
    entropy = sum_log = 0.0
    convs = channels = resolution = 0
    for name, block in by_block.items():
        if name not in ("stem", "head") and block[-1].h_out < block[0].h_in and (convs or out):
            out.append({"channels": channels, "resolution": resolution, "entropy": entropy,
                        "convs": convs, "sum_log_width": sum_log})
        for layer in block:
            if layer.op == "conv" and layer.role in ("main", "head"):
                log_width = math.log(layer.c_in // layer.groups * layer.kernel ** 2)
                entropy += 0.5 * log_width
                sum_log += log_width
                convs += 1
                if name == "head":  # a head conv widens the last feature map
                    channels = layer.c_out
        if name != "head":
            channels, resolution = block[-1].c_out, block[-1].h_out
    out.append({"channels": channels, "resolution": resolution, "entropy": entropy,
                "convs": convs, "sum_log_width": sum_log})
    return out


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_deepmad_groups_match_the_layers(kind: str, variant: str | None) -> None:
    spec = _spec(kind, variant)
    expected = _reference_groups(spec)
    got = groups(spec)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert (g.channels, g.resolution, g.convs) == (e["channels"], e["resolution"],
                                                       e["convs"])
        assert g.entropy == pytest.approx(e["entropy"], rel=1e-12)
        assert g.sum_log_width == pytest.approx(e["sum_log_width"], rel=1e-12)
    n = len(expected)
    alpha = (1.0, 1.0, 1.0, 1.0, 8.0) if n == 5 else (1.0,) * (n - 1) + (8.0,)
    depths = [s.depth for s in spec.stages]
    mean = sum(depths) / len(depths)
    penalty = 10.0 * math.exp(math.sqrt(sum((d - mean) ** 2 for d in depths) / len(depths)))
    score = sum(a * (math.log(e["channels"]) + 2 * math.log(e["resolution"])) * e["entropy"]
                for a, e in zip(alpha, expected, strict=True)) - penalty
    assert DeepMAD().score(spec) == pytest.approx(score, rel=1e-12)


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_peak_memory_positive_for_blocks_that_run(kind: str, variant: str | None) -> None:
    spec = _spec(kind, variant)
    assert cost(spec).peak_activation_bytes > 0
    for block in blocks(spec):
        peak = block_cost(block.fn, block.args).peak_elements
        if block.layers:
            assert peak > 0, block.name
        else:  # an identity block runs nothing and holds nothing of its own
            assert peak == 0, block.name
