from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from archdesign.cli import main
from archdesign.cost import cost
from archdesign.errors import InputError
from archdesign.hardware.measure import (
    REPEAT_TOLERANCE,
    SampleConfig,
    Timer,
    measure_network,
    measure_profile,
    repeatability,
    sample_networks,
)
from archdesign.hardware.profile import ProfileError, get_profile, load_profile, profile_from_dict
from archdesign.hardware.runtime import (
    cpu_model,
    network_callable,
    require_this_machine,
    this_machine,
)
from archdesign.hardware.trust import check_hardware
from archdesign.measurements import read_measurements
from archdesign.zoo import get_arch

# tiny networks (a few MMACs at 32x32) and few repeats: these tests check what is written,
# never how fast anything ran
SMALL = SampleConfig(spaces=("mobilenet", "resnet-basic"), max_mflops=200,
                     resolutions=(32, 64, 128))
FAST = Timer("cpu", "cpu", warmup=1, repeats=2, min_sample_s=1e-4)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("measure") / "here.yaml"
    result = measure_profile(out, calibration_networks=4, networks=3, sample=SMALL,
                             timer=FAST, chunk=4)
    assert result.profile is not None and result.timed == 7
    return out


def test_timer_two_interleaved_passes_on_the_cpu_clock():
    timings = FAST.time_many([lambda: sum(range(20000)), lambda: sum(range(200))])
    for t in timings:
        assert t.samples == 2 * FAST.repeats
        assert t.cpu_ms == t.median_ms and t.wall_ms > 0
        assert all(p > 0 for p in t.passes_ms) and t.spread >= 0
        assert t.repeatable == (abs(t.passes_ms[1] / t.passes_ms[0] - 1) <= REPEAT_TOLERANCE)
    # more work per call takes more of the thread's CPU time
    assert timings[0].cpu_ms > timings[1].cpu_ms  # type: ignore[operator]
    wall = Timer("cpu", "wall", warmup=1, repeats=2).time_many([lambda: None])[0]
    assert wall.cpu_ms is None and wall.median_ms == wall.wall_ms
    with pytest.raises(InputError, match="--clock cpu"):
        Timer("cuda", "cpu")


def test_onnx_runtime_runs_the_network_on_the_calling_thread():
    spec = replace(get_arch("resnet18"), resolution=32)
    run = network_callable(spec, 2, "onnxruntime", threads=1)
    (logits,) = run()
    assert logits.shape == (2, spec.head.num_classes)
    # one intra-op thread computes on the caller: its CPU time is the process's
    process, thread = time.process_time_ns(), time.thread_time_ns()
    for _ in range(5):
        run()
    process, thread = time.process_time_ns() - process, time.thread_time_ns() - thread
    assert thread > 0.8 * process
    timing = measure_network(spec, 2, repeats=2)
    assert timing.cpu_ms is not None and timing.samples == 4
    with pytest.raises(InputError, match="cannot time networks on cuda"):
        network_callable(spec, 1, "onnxruntime", device="cuda")


def test_drawn_networks_round_trip_through_a_measurement_file(tmp_path):
    drawn = sample_networks(SMALL, 6, seed=0)
    assert {d.space for d in drawn} == {"mobilenet", "resnet-basic"}
    assert all(cost(d.spec).flops <= 200e6 for d in drawn)
    path = tmp_path / "m.csv"
    names = sorted({k for d in drawn for k in d.point})
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["space", *names, "resolution", "latency_ms"])
        writer.writeheader()
        for d in drawn:
            writer.writerow({"space": d.space, **{k: repr(v) if isinstance(v, float) else v
                                                  for k, v in d.point.items()},
                             "resolution": d.spec.resolution, "latency_ms": 1.0})
    data = read_measurements(path)
    assert [m.spec for m in data.rows] == [d.spec for d in drawn]


def test_measure_writes_a_calibrated_profile_of_this_machine(measured):
    profile = load_profile(measured)
    assert profile.runtime == "onnxruntime"
    assert profile.machine == {**this_machine("cpu"), "threads": "1"}
    assert profile.machine["cpu"] == cpu_model()
    v = profile.validation
    assert v["cross_validated"]["n"] == 4 and v["held_out"]["n"] == 3
    assert v["repeatability"]["n"] == 7 and 0 <= v["repeatability"]["within_5pct"] <= 1
    assert v["timer"]["clock"] == "cpu" and v["timer"]["passes"] == 2
    # the measurement file is the shared format; the calibration recorded its rows
    csv_path = measured.with_name("here.measurements.csv")
    data = read_measurements(csv_path)
    assert len(data.rows) == 7 and all(m.value > 0 for m in data.rows)
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["role"] for r in rows].count("calibration") == 4
    assert all(r["latency_ms"] == r["cpu_ms"] and r["runtime"] == "onnxruntime"
               for r in rows)
    recorded = v["calibration"]["measurements"][0]["rows"]
    assert [line for line, _, _ in recorded] == [i + 2 for i, r in enumerate(rows)
                                                 if r["role"] == "calibration"]
    ratios = np.array([float(r["pass2_ms"]) / float(r["pass1_ms"]) for r in rows])
    assert v["repeatability"] == repeatability(ratios)
    assert require_this_machine(profile) == "onnxruntime"


def test_measure_resumes_without_timing_a_network_twice(measured, tmp_path):
    out = tmp_path / "again.yaml"
    csv_path = tmp_path / "again.measurements.csv"
    csv_path.write_bytes(measured.with_name("here.measurements.csv").read_bytes())
    again = measure_profile(out, calibration_networks=4, networks=3, sample=SMALL,
                            timer=FAST, chunk=4)
    assert again.timed == 0 and again.networks == 7 and again.profile is not None
    more = measure_profile(out, calibration_networks=4, networks=5, sample=SMALL,
                           timer=FAST, chunk=4)
    assert more.timed == 2 and more.networks == 9
    assert more.profile is not None and more.profile.validation["held_out"]["n"] == 5
    # a row cut short by a killed run is dropped and its network timed again
    text = csv_path.read_bytes()
    csv_path.write_bytes(text[:text.rstrip().rfind(b"\n") + 30])
    healed = measure_profile(out, calibration_networks=4, networks=5, sample=SMALL,
                             timer=FAST, chunk=4)
    assert healed.timed == 1 and healed.networks == 9
    assert len(read_measurements(csv_path).rows) == 9
    # a spent budget stops between chunks, says so and keeps the file as it was
    cut = measure_profile(tmp_path / "cut.yaml", calibration_networks=4, networks=3,
                          sample=SMALL, timer=FAST, minutes=1e-9)
    assert cut.budget_spent and cut.timed == 0 and cut.profile is None
    assert not (tmp_path / "cut.yaml").exists()
    # a file timed otherwise is not silently mixed with this run
    with pytest.raises(InputError, match="choose another --out"):
        measure_profile(out, calibration_networks=4, networks=3, sample=SMALL,
                        timer=Timer("cpu", "wall", warmup=1, repeats=2))


def test_measure_cli_prints_the_repeatability(tmp_path):
    out = tmp_path / "cli.yaml"
    args = ["profile", "measure", "--out", str(out), "--calibration", "3", "--networks", "0",
            "--repeats", "1", "--spaces", "resnet-basic", "--max-mflops", "200",
            "--resolutions", "32,64", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["networks"] == 3 and data["repeatability"]["n"] == 3
    assert data["cross_validated"]["n"] == 3 and "held_out" not in data
    result = CliRunner().invoke(main, args[:-1])
    assert result.exit_code == 0, result.output
    assert "two independent passes agree within ±5%" in result.output
    assert "(0 timed now)" in result.output


def test_measure_refuses_other_machines_profiles(measured, tmp_path):
    runner = CliRunner()
    for name in ("rpi4", "xeon-gold-6226"):
        result = runner.invoke(main, ["latency", "--arch", "resnet18", "--hardware", name,
                                      "--measure"])
        assert result.exit_code == 2 and "not of this machine" in result.output
        assert "Traceback" not in result.output
    elsewhere = tmp_path / "elsewhere.yaml"
    profile = load_profile(measured)
    replace(profile, machine={**profile.machine, "cpu": "Some Other CPU"}).save(elsewhere)
    result = runner.invoke(main, ["latency", "--arch", "resnet18", "--hardware",
                                  str(elsewhere), "--measure"])
    assert result.exit_code == 2 and "'Some Other CPU'" in result.output
    torch_profile = replace(profile, runtime="torch")
    with pytest.raises(InputError, match="measured in torch"):
        require_this_machine(torch_profile, "cpu", "onnxruntime")
    result = runner.invoke(main, ["search", "--space", "resnet-basic", "--hardware", "t4",
                                  "--measure", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 2 and "not of this machine" in result.output
    assert not (tmp_path / "run").exists()


def test_latency_measures_in_the_profiles_runtime(measured, tmp_path):
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps(replace(get_arch("resnet18"), resolution=32).to_dict()))
    result = CliRunner().invoke(main, ["latency", str(spec), "--hardware", str(measured),
                                       "--measure", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runtime"] == "onnxruntime" and data["threads"] == 1
    assert data["measured_ms"] == data["measured_cpu_ms"] and data["validated"] is True
    assert len(data["measured_passes_ms"]) == 2


def test_unvalidated_profiles_are_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        check_hardware("rpi4")
        check_hardware("xeon-gold-6226")
        check_hardware("no-such-profile")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "'rpi4' was never checked" in messages[0]
    assert "'no-such-profile' not found" in messages[1]
    with pytest.raises(ProfileError):
        check_hardware("no-such-profile", measure=True)


def test_profiles_name_their_runtime():
    assert get_profile("xeon-gold-6226").runtime == "torch"
    assert get_profile("pixel3").runtime == "tflite"
    assert get_profile("rpi4").runtime is None
    data = get_profile("t4").to_dict()
    with pytest.raises(ProfileError, match=r"x\.yaml: runtime: 'tensorflow' is not one of"):
        profile_from_dict({**data, "runtime": "tensorflow"}, "x.yaml")
    with pytest.raises(ProfileError, match=r"x\.yaml: machine: unknown key 'ram'"):
        profile_from_dict({**data, "machine": {"ram": "8G"}}, "x.yaml")


def test_latency_cli():
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
    profiles = {p["name"]: p for p in json.loads(result.output)["profiles"]}
    assert "v100" in profiles and "rpi4" in profiles
    assert profiles["pixel3"]["runtime"] == "tflite" and profiles["rpi4"]["runtime"] is None
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
