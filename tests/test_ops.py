"""The op table (:mod:`archdesign.ops`): every row's module, costs, op class and the
rounding rule, checked row by row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archdesign import ops
from archdesign.ops import (
    ACTIVATION_FUNCTIONS,
    INPLACE_OPS,
    OPS,
    Layer,
    evaluate,
    layer_activations,
    layer_flops,
    layer_params,
    make_divisible,
    moves_data,
    op_class,
)
from archdesign.spec import ACTIVATIONS

# Example layers of every op (c_in, c_out, h_in, w_in, h_out, w_out, ...); an op added to
# the table without examples fails test_every_op_has_examples.
SAMPLES: dict[str, list[Layer]] = {
    "conv": [
        Layer("dense", "conv", 8, 16, 9, 9, 5, 5, kernel=3, stride=2, padding=1),
        Layer("dense_bias", "conv", 8, 16, 9, 9, 9, 9, kernel=1, bias=True),
        Layer("grouped", "conv", 12, 24, 8, 8, 8, 8, kernel=3, padding=1, groups=4),
        Layer("depthwise", "conv", 16, 16, 8, 8, 8, 8, kernel=5, padding=2, groups=16),
        Layer("patchify", "conv", 3, 32, 16, 16, 4, 4, kernel=4, stride=4, bias=True),
    ],
    "linear": [Layer("fc", "linear", 32, 10, 1, 1, 1, 1, bias=True),
               Layer("fc_nobias", "linear", 32, 10, 1, 1, 1, 1)],
    "bn": [Layer("bn", "bn", 16, 16, 4, 4, 4, 4)],
    "ln": [Layer("ln", "ln", 16, 16, 4, 4, 4, 4)],
    "scale": [Layer("scale", "scale", 16, 16, 4, 4, 4, 4)],
    "act": [Layer(f"act_{name}", "act", 16, 16, 4, 4, 4, 4, act=name)
            for name in ACTIVATION_FUNCTIONS],
    "add": [Layer("add", "add", 16, 16, 4, 4, 4, 4, inputs=(-1, -1))],
    "mul": [Layer("mul", "mul", 16, 16, 4, 4, 4, 4, inputs=(-1, -1))],
    "shuffle": [Layer("shuffle", "shuffle", 16, 16, 4, 4, 4, 4, groups=4)],
    "maxpool": [Layer("pool", "maxpool", 8, 8, 9, 9, 5, 5, kernel=3, stride=2, padding=1)],
    "gap": [Layer("gap", "gap", 8, 8, 5, 5, 1, 1)],
    "flatten": [Layer("flatten", "flatten", 8, 8, 1, 1, 1, 1)],
}


def _cases() -> list[Any]:
    cases = []
    for op in OPS:
        samples = SAMPLES.get(op)
        if not samples:
            cases.append(pytest.param(op, None, id=f"{op}-NO-SAMPLES"))
            continue
        cases += [pytest.param(op, layer, id=f"{op}-{layer.name}") for layer in samples]
    return cases


CASES = _cases()


def _sample(op: str, layer: Layer | None) -> Layer:
    if layer is None:
        pytest.fail(f"op {op!r} is in ops.OPS but has no sample layer in tests/test_ops.py")
    return layer


def test_every_op_has_examples() -> None:
    assert set(SAMPLES) == set(OPS)


@pytest.mark.parametrize(("op", "layer"), CASES)
def test_module_builds_with_the_table_params_and_shape(op: str, layer: Layer | None) -> None:
    import torch

    from archdesign.build import layer_module

    layer = _sample(op, layer)
    module = OPS[op].module(layer)
    assert type(module) is type(layer_module(layer))
    assert sum(p.numel() for p in module.parameters()) == layer_params(layer)
    shape = (layer.c_in,) if op == "linear" else (layer.c_in, layer.h_in, layer.w_in)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        out = module(*[x for _ in layer.inputs])
    assert out[0].numel() == layer.out_elements
    if out.dim() == 4:
        assert tuple(out.shape[1:]) == (layer.c_out, layer.h_out, layer.w_out)


@pytest.mark.parametrize(("op", "layer"), CASES)
def test_costs_on_arrays_equal_costs_on_ints(op: str, layer: Layer | None) -> None:
    # the same terms evaluate a batch of blocks (cost_many): one entry per block
    layer = _sample(op, layer)
    numeric = ("c_in", "c_out", "h_in", "w_in", "h_out", "w_out", "kernel", "stride",
               "padding", "groups")
    batched = layer._replace(**{f: np.array([getattr(layer, f)] * 3) for f in numeric})
    row = OPS[op]
    for terms, scalar in ((row.flops, layer_flops), (row.params, layer_params),
                          (row.activations, layer_activations)):
        value = evaluate(terms, batched)
        assert np.array_equal(np.broadcast_to(value, (3,)), [scalar(layer)] * 3)


def test_activation_functions_are_the_modules() -> None:
    from archdesign.modules import _ACTIVATIONS

    assert tuple(_ACTIVATIONS) == ACTIVATION_FUNCTIONS
    # every block activation of a spec (but 'none': no layer) is a function of the table
    assert set(ACTIVATIONS) - {"none"} <= set(ACTIVATION_FUNCTIONS)


def test_inplace_ops_and_views() -> None:
    assert {name for name, row in OPS.items() if row.inplace} == INPLACE_OPS
    for op, samples in SAMPLES.items():
        for layer in samples:
            assert moves_data(layer) == (op != "flatten")


# -- op classes ------------------------------------------------------------------------


@pytest.mark.parametrize(("layer", "expected"), [
    (Layer("dw", "conv", 32, 32, 8, 8, 8, 8, kernel=3, padding=1, groups=32), "depthwise"),
    (Layer("dw_multiplier", "conv", 16, 32, 8, 8, 8, 8, kernel=3, padding=1, groups=16),
     "depthwise"),
    (Layer("one_channel", "conv", 1, 8, 8, 8, 8, 8, kernel=3, padding=1, groups=1), "conv"),
    (Layer("grouped", "conv", 32, 32, 8, 8, 8, 8, kernel=3, padding=1, groups=8), "conv"),
    (Layer("dense", "conv", 32, 64, 8, 8, 8, 8, kernel=1), "conv"),
])
def test_conv_is_depthwise_only_when_groups_equal_inputs(layer: Layer, expected: str) -> None:
    assert op_class(layer) == expected


def test_conv_class_on_arrays() -> None:
    dw = Layer("dw", "conv", np.array([16, 32]), np.array([16, 32]), 8, 8, 8, 8, kernel=3,
               padding=1, groups=np.array([16, 32]))
    assert op_class(dw) == "depthwise"
    grouped = dw._replace(groups=np.array([4, 8]))
    assert op_class(grouped) == "conv"


def test_op_classes_of_the_other_ops() -> None:
    expected = {"linear": "linear", "bn": "norm", "ln": "norm", "scale": "elementwise",
                "act": "elementwise", "add": "elementwise", "mul": "elementwise",
                "shuffle": "elementwise", "maxpool": "pool", "gap": "pool", "flatten": None}
    assert set(expected) == set(OPS) - {"conv"}
    for op, cls in expected.items():
        for layer in SAMPLES[op]:
            assert op_class(layer) == cls, op


# -- make_divisible: the MobileNet rule --------------------------------------------------


def _mobilenet_rule(v: float, divisor: int = 8) -> int:
    """torchvision's / TF-slim's ``_make_divisible``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


@pytest.mark.parametrize(("value", "divisor", "expected"), [
    (1, 8, 8), (3, 8, 8), (4, 8, 8), (8, 8, 8), (10, 8, 16), (12, 8, 16), (16, 8, 16),
    (20, 8, 24), (27, 8, 32), (36, 8, 40), (91, 8, 88), (100, 8, 104), (37.5, 8, 40),
    (960 // 4, 8, 240), (72 // 4, 8, 24), (20, 16, 32), (24, 16, 32),
])
def test_make_divisible_by_hand(value: float, divisor: int, expected: int) -> None:
    assert _mobilenet_rule(value, divisor) == expected  # the hand figure is the rule's
    got = make_divisible(value, divisor)
    assert got == expected and isinstance(got, int)


@pytest.mark.parametrize("divisor", [8, 16])
def test_make_divisible_matches_the_rule_on_ints_and_arrays(divisor: int) -> None:
    ints = np.arange(1, 2049)
    floats = np.arange(0.25, 600.0, 0.25)
    for values in (ints, floats):
        expected = [_mobilenet_rule(float(v), divisor) for v in values]
        assert [make_divisible(v.item(), divisor) for v in values] == expected
        got = make_divisible(values, divisor)
        assert got.dtype == np.int64
        assert got.tolist() == expected


def test_make_divisible_arrays_with_an_odd_divisor() -> None:
    assert make_divisible(np.array([16.5]), 3).tolist() == [make_divisible(16.5, 3)] == [18]


# -- importing the table does not import torch --------------------------------------------


def _imports_torch(code: str) -> bool:
    probe = code + "\nimport sys\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, timeout=120)
    return result.stdout.strip().splitlines()[-1] == "True"


def test_the_op_table_module_does_not_import_torch() -> None:
    # ops.py on its own (without the package's __init__), as a fresh interpreter loads it
    path = Path(ops.__file__)
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('ops_alone', {str(path)!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['ops_alone'] = module\n"
            "spec.loader.exec_module(module)\n"
            "assert module.OPS['conv'].module is not None")
    assert not _imports_torch(code)


def test_importing_archdesign_ops_does_not_import_torch() -> None:
    assert not _imports_torch("import archdesign.ops")
    # its modules do, when a module is built
    assert _imports_torch("from archdesign.ops import OPS, Layer\n"
                          "OPS['bn'].module(Layer('bn', 'bn', 4, 4, 2, 2, 2, 2))")
