from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from archdesign.cli import main
from archdesign.errors import InputError
from archdesign.hardware.importers import read_ofa, read_tinynas, tinynas_row
from archdesign.hardware.kernels import COL, FusionRules
from archdesign.hardware.models import RooflineModel, model_for
from archdesign.hardware.profile import get_profile, load_profile
from archdesign.hardware.validate import metrics, validate_profile


def test_metrics_by_hand():
    m = metrics(np.array([1.0, 2.2, 2.5, 5.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert m["within_10pct"] == 0.5  # 0% and 10% in; 16.7% and 25% out
    assert m["spearman"] == pytest.approx(1.0)
    assert m["mape"] == pytest.approx(np.median([0, 10, 100 / 6, 25]))
    assert m["n"] == 4


def test_tinynas_row_shapes():
    row = tinynas_row("Depthwise", 32, 56, 56, 32, 3, 2, 0)
    assert row[COL["groups"]] == 32
    assert row[COL["h_out"]] == 28
    assert row[COL["flops"]] == 9 * 32 * 28 * 28
    fused = tinynas_row("Regular", 16, 8, 8, 16, 1, 1, 1)
    assert fused[COL["in_elements"]] == 2 * 16 * 8 * 8  # input + residual


def test_read_tinynas_small_file(tmp_path):
    path = tmp_path / "conv_data.out.fp16"
    path.write_text("{Regular,1,8,6,6,32,7,2,0} 0.0246784\n{Regular,1,8,6,6,32,7,1,0} -1\n"
                    "{Depthwise,32,64,14,14,64,3,1,0} 0.05\n")
    table = read_tinynas(path)
    assert len(table) == 2
    assert set(table.dtype) == {"float16"}
    assert list(table.batch) == [1, 32]
    assert len(read_tinynas(path, batch=32)) == 1
    path.write_text("{Regular,1,8} 0.1\n")
    with pytest.raises(InputError, match=r"conv_data.out.fp16:1: not a TinyNAS entry"):
        read_tinynas(path)


def test_read_ofa_reproduces_block_sums(ofa_dir):
    roof = RooflineModel(get_profile("rpi4"))
    for name in ("note10_224_lookup_table.yaml", "proxylessnas_mobile_trim.yaml"):
        table = read_ofa(ofa_dir / name, FusionRules(),
                         lambda rows, roof=roof: roof.predict_kernels(rows, 1, "float32"))
        assert len(table) > 150
        assert np.all(table.latency_ms > 0)
    # the 224 table's entries sum back to their means
    import yaml

    data = yaml.safe_load((ofa_dir / "note10_224_lookup_table.yaml").read_text())
    table = read_ofa(ofa_dir / "note10_224_lookup_table.yaml", FusionRules(),
                     lambda rows: roof.predict_kernels(rows, 1, "float32"))
    assert table.latency_ms.sum() == pytest.approx(sum(e["mean"] for e in data.values()))


def test_import_and_validate_tinynas(tmp_path, tinynas_dir):
    # a slice of the real V100 table: batch-1 FP32 entries
    lines = [x for x in (tinynas_dir / "conv_data.out").read_text().splitlines()
             if x.startswith("{Regular,1,") and not x.endswith(" -1")][:1500]
    data = tmp_path / "conv_data.out"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "v100-test.yaml"
    result = CliRunner().invoke(main, ["profile", "import", "--format", "tinynas", str(data),
                                       "--out", str(out), "--train-fraction", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["entries"] == 1500 and figures["train"] == 450
    profile = load_profile(out)
    assert profile.model is not None and profile.model.kind == "fitted"
    fitted = figures["kernels"]["fitted"]
    assert fitted["spearman"] > figures["kernels"]["roofline"]["spearman"]
    assert fitted["spearman"] > 0.95
    # validating on the data file uses exactly the entries not fitted on
    result = CliRunner().invoke(main, ["profile", "validate", str(out), "--data", str(data),
                                       "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"within_10pct", "spearman", "mape", "n"} <= set(report)
    assert report["n"] == 1050
    assert report["spearman"] == pytest.approx(fitted["spearman"])
    # the stored model is refit identically at load (data, not a pickle)
    again = validate_profile(load_profile(out))
    assert again["within_10pct"] == pytest.approx(fitted["within_10pct"])
    assert model_for(profile, "table").predict(__import__("archdesign.zoo").zoo.get_arch(
        "resnet18")) > 0
