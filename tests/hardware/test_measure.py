from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from archdesign.cli import main
from archdesign.hardware.kernels import FusionRules, fused_indices
from archdesign.hardware.measure import (
    SampleConfig,
    Timer,
    kernel_callable,
    measure_profile,
    sample_networks,
)
from archdesign.hardware.profile import load_profile
from archdesign.hardware.table import load_table
from archdesign.layers import blocks
from archdesign.zoo import get_arch

SMALL = SampleConfig(spaces=("mobilenet", "regnet"), max_mflops=60, resolutions=(32, 64))
FAST = Timer("cpu", warmup=1, repeats=3, min_sample_s=1e-5)


def test_timer_reports_medians_and_spread():
    timings = FAST.time_many([lambda: sum(range(1000)), lambda: sum(range(10))])
    assert all(t.median_ms > 0 and t.samples == 3 and t.spread >= 0 for t in timings)


def test_kernel_callable_computes_the_fused_kernel():
    block = blocks(get_arch("resnet18"))[3]  # projection block: add fused into proj
    groups = fused_indices(block.layers, FusionRules())
    for indices in groups:
        out = kernel_callable(block.layers, indices, 2, "cpu")()
        last = block.layers[indices[-1]]
        assert tuple(out.shape) == (2, last.c_out, last.h_out, last.w_out)


def test_sampled_networks_respect_the_cap():
    nets = sample_networks(SMALL, 6, seed=0)
    assert {name for name, _ in nets} == {"mobilenet", "regnet"}
    from archdesign.cost import cost

    assert all(cost(s).flops <= 60e6 for _, s in nets)


def test_measure_writes_profile_and_resumes(tmp_path):
    out = tmp_path / "here.yaml"
    result = measure_profile(out, minutes=5, networks=3, calibration_networks=3,
                             sample=SMALL, round_size=8, timer=FAST, pool_networks=1)
    assert result.kernels >= 8
    profile = load_profile(out)
    assert profile.model is not None and profile.model.measurements == "here.measurements.csv"
    table = load_table(tmp_path / "here.measurements.csv")
    assert len(table) == result.kernels
    assert np.all(table.latency_ms > 0)
    networks = profile.validation["networks"]
    assert networks["fitted"]["n"] == 3
    assert set(networks["spaces"]) <= {"mobilenet", "regnet"}
    # a second run keeps what was measured and adds to it
    # (the whole pool of one network was measured: nothing is timed twice)
    again = measure_profile(out, minutes=5, networks=3, calibration_networks=3,
                            sample=SMALL, round_size=8, timer=FAST, pool_networks=2)
    assert again.kernels > result.kernels
    assert len(load_table(tmp_path / "here.measurements.csv")) == again.kernels
    assert again.networks == 6  # none timed twice
    assert len(set(map(tuple, load_table(tmp_path / "here.measurements.csv").rows.tolist()))) \
        == again.kernels


def test_latency_cli(tmp_path):
    result = CliRunner().invoke(main, ["latency", "--arch", "resnet18", "--hardware", "v100",
                                       "--per-layer", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "roofline" and data["dtype"] == "float16"
    assert sum(k["predicted_ms"] for k in data["kernels"]) == pytest.approx(data["predicted_ms"])
    result = CliRunner().invoke(main, ["latency", "--arch", "resnet18", "--hardware", "nope"])
    assert result.exit_code == 2 and "known profiles" in result.output


def test_hardware_cli():
    result = CliRunner().invoke(main, ["hardware", "--json"])
    assert result.exit_code == 0
    names = [p["name"] for p in json.loads(result.output)["profiles"]]
    assert "v100" in names and "rpi4" in names
    result = CliRunner().invoke(main, ["hardware", "show", "t4", "--json"])
    assert json.loads(result.output)["memory_bandwidth"] == 320e9


def test_an_interrupt_inside_bookkeeping_is_raised_after_it() -> None:
    import os
    import signal

    from archdesign.hardware.measure import _interrupt_after

    done = []
    with pytest.raises(KeyboardInterrupt), _interrupt_after():
        os.kill(os.getpid(), signal.SIGINT)  # arrives mid-block: held, not raised here
        done.append("finished")
    assert done == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
