from __future__ import annotations

import numpy as np
import pytest

from archdesign.hardware.kernels import COL, OP_CLASS_INDEX, FusionRules, network_kernels
from archdesign.hardware.models import (
    FittedModel,
    LatencyModel,
    RooflineModel,
    TableModel,
    model_for,
)
from archdesign.hardware.profile import get_profile
from archdesign.hardware.table import KernelTable
from archdesign.zoo import get_arch

V100 = get_profile("v100")


def _conv_row(c_in: int, hw: int, c_out: int, k: int = 3, stride: int = 1) -> list[float]:
    from archdesign.hardware.importers import tinynas_row

    return tinynas_row("Regular", c_in, hw, hw, c_out, k, stride, 0)


def _synthetic_table(n: int = 200, seed: int = 0) -> KernelTable:
    """Kernels whose 'measured' time is 1.7x the roofline plus 10 µs."""
    rng = np.random.default_rng(seed)
    roof = RooflineModel(V100)
    records = []
    for _ in range(n):
        row = _conv_row(int(rng.choice([16, 32, 64, 128, 256])), int(rng.choice([7, 14, 28, 56])),
                        int(rng.choice([16, 32, 64, 128, 256])), int(rng.choice([1, 3, 5])))
        ms = 1.7 * float(roof.predict_kernels(np.array([row]), 1, "float16")[0]) + 0.01
        records.append((row, 1, "float16", ms, float("nan"), "train"))
    return KernelTable.from_records(records)


def test_roofline_by_hand():
    # 3x3 conv 64->64 on 56x56: 115.6 MMACs; compute-bound on a V100 in FP32
    row = np.array([_conv_row(64, 56, 64)])
    macs = 9 * 64 * 64 * 56 * 56
    assert row[0, COL["flops"]] == macs
    compute = 2 * macs / (15.7e12 * 0.5)
    moved = (64 * 56 * 56 * 2 + 9 * 64 * 64) * 4
    memory = moved / (900e9 * 0.7)
    expected = (max(compute, memory) + 8e-6) * 1e3
    got = RooflineModel(V100).predict_kernels(row, 1, "float32")[0]
    assert got == pytest.approx(expected)
    # batch multiplies the work, not the overhead
    got32 = RooflineModel(V100).predict_kernels(row, 32, "float32")[0]
    assert got32 == pytest.approx((32 * compute + 8e-6) * 1e3, rel=1e-6)


def test_network_is_the_sum_of_its_kernels_and_memoized():
    model = RooflineModel(V100)
    spec = get_arch("resnet50")
    per_kernel = model.predict_layers(spec, 1, "float16")
    assert model.predict(spec, 1, "float16") == pytest.approx(sum(t for _, t in per_kernel))
    names, _ = network_kernels(spec, V100.fusion)
    assert [n for n, _ in per_kernel] == names
    batched = model.predict_many([spec, get_arch("mobilenet_v2"), spec], 1, "float16")
    assert batched[0] == batched[2] == pytest.approx(model.predict(spec, 1, "float16"))


def test_precision_and_batch_are_inputs():
    model = RooflineModel(V100)
    spec = get_arch("resnet50")
    assert model.predict(spec, 1, "float32") > model.predict(spec, 1, "float16")
    assert model.predict(spec, 8, "float16") > model.predict(spec, 1, "float16")
    with pytest.raises(ValueError, match="dtype"):
        model.predict(spec, 1, "float64")


def test_fusion_rules_change_the_kernel_count():
    spec = get_arch("resnet18")
    fused, _ = network_kernels(spec, FusionRules())
    unfused, _ = network_kernels(spec, FusionRules(False, False))
    assert len(fused) < len(unfused)


def test_table_model_exact_hits_and_interpolation():
    table = _synthetic_table()
    model = TableModel(V100, table)
    assert np.allclose(model.predict_kernels(table.rows, 1, "float16"), table.latency_ms)
    # an unseen shape between measured ones: the measured/roofline ratio carries over
    row = np.array([_conv_row(48, 20, 96, 3)])
    truth = 1.7 * RooflineModel(V100).predict_kernels(row, 1, "float16")[0] + 0.01
    assert model.predict_kernels(row, 1, "float16")[0] == pytest.approx(truth, rel=0.3)
    # no measured kernel of the class at all: the roofline
    dw = row.copy()
    dw[0, COL["op_class"]] = OP_CLASS_INDEX["depthwise"]
    assert model.predict_kernels(dw, 1, "float16")[0] == pytest.approx(
        RooflineModel(V100).predict_kernels(dw, 1, "float16")[0])


def test_fitted_model_learns_a_systematic_correction():
    train = _synthetic_table(300, seed=0)
    test = _synthetic_table(100, seed=1)
    model = FittedModel(V100, train)
    ape = np.abs(model.predict_kernels(test.rows, 1, "float16") - test.latency_ms) / test.latency_ms
    assert np.median(ape) < 0.05
    roof = RooflineModel(V100).predict_kernels(test.rows, 1, "float16")
    assert np.median(np.abs(roof - test.latency_ms) / test.latency_ms) > 0.3


@pytest.mark.parametrize("make", [
    lambda: RooflineModel(V100),
    lambda: TableModel(V100, _synthetic_table()),
    lambda: FittedModel(V100, _synthetic_table()),
], ids=["roofline", "table", "fitted"])
def test_contract_every_model(make):
    """One contract for every LatencyModel: shapes, positivity, sums, memo."""
    model: LatencyModel = make()
    specs = [get_arch(a) for a in ("resnet18", "mobilenet_v2", "convnext_tiny")]
    many = model.predict_many(specs, 1, "float16")
    assert many.shape == (3,)
    assert np.all(many > 0)
    for spec, value in zip(specs, many, strict=True):
        assert model.predict(spec, 1, "float16") == pytest.approx(value)
        layers = model.predict_layers(spec, 1, "float16")
        assert sum(t for _, t in layers) == pytest.approx(value)
        assert all(t > 0 for _, t in layers)
    assert model.predict_kernels(np.zeros((0, len(COL))), 1, "float16").shape == (0,)


def test_datasheet_profile_gives_roofline_and_refuses_measured_models():
    assert isinstance(model_for(V100), RooflineModel)
    with pytest.raises(Exception, match="no measured data"):
        model_for(V100, "fitted")


def test_calibration_applies_to_networks():
    spec = get_arch("resnet18")
    raw = RooflineModel(V100).predict(spec)
    kernels = len(network_kernels(spec, V100.fusion)[0])
    cal = RooflineModel(V100, {"scale": 2.0, "per_kernel_ms": 0.01, "constant_ms": 1.0})
    assert cal.predict(spec) == pytest.approx(2 * raw + 0.01 * kernels + 1.0)


def test_predict_many_equals_the_sum_over_each_networks_kernels():
    """The batched cold path (kernels_many) against the kernels of each network one by one
    (network_kernels: block_kernels per block), on every space and the zoo."""
    from archdesign.spaces import get_space, list_spaces
    from archdesign.zoo import list_archs

    rng = np.random.default_rng(7)
    specs = [get_arch(name) for name in list_archs()]
    specs += [get_space(name).sample_spec(rng) for name in list_spaces() for _ in range(20)]
    for profile in (get_profile("x86-avx2"), V100):
        model = model_for(profile, "roofline")
        got = model.predict_many(specs)
        cal = model.calibration
        for spec, value in zip(specs, got.tolist(), strict=True):
            names, rows = network_kernels(spec, profile.fusion)
            kernels = model.predict_kernels(rows, 1, profile.precision)
            expected = (cal.get("scale", 1.0) * float(kernels.sum())
                        + cal.get("per_kernel_ms", 0.0) * len(names)
                        + cal.get("constant_ms", 0.0))
            assert value == pytest.approx(expected, rel=1e-12, abs=0), spec
