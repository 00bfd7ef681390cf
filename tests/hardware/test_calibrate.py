"""Calibration from whole-network timings: recovery of known constants, the exact-max
prediction is the roofline's, the CLI round trip, and what a profile says of its checks."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from archdesign.cli import main
from archdesign.hardware.calibrate import (
    STRUCTURES,
    Fit,
    Structure,
    calibrate,
    featurize,
    fit,
)
from archdesign.hardware.kernels import FusionRules
from archdesign.hardware.models import model_for
from archdesign.hardware.profile import (
    Efficiency,
    ModelConfig,
    get_profile,
    load_profile,
)
from archdesign.hardware.trust import validation_summary, warn_if_unvalidated
from archdesign.spaces import get_space

SPACE = "fbnet-cifar100"


@pytest.fixture(scope="module")
def networks() -> list:
    space = get_space(SPACE)
    rng = np.random.default_rng(0)
    return [space.sample(rng) for _ in range(40)]


def _device():
    """A made-up device: the x86 datasheet with other efficiencies and a constant."""
    base = get_profile("x86-avx2")
    efficiency = dict(base.efficiency)
    efficiency["conv"] = Efficiency(0.25, 0.4)
    efficiency["depthwise"] = Efficiency(0.05, 0.3)
    return replace(base, efficiency=efficiency, kernel_overhead_us=30.0,
                   fusion=FusionRules(True, False),
                   model=ModelConfig("roofline", calibration={"constant_ms": 0.5}))


def test_calibration_recovers_a_known_device(networks: list) -> None:
    space = get_space(SPACE)
    specs = [space.spec(p) for p in networks]
    truth = model_for(_device()).predict_many(specs)
    result = calibrate(specs[:15], np.ones(15, int), truth[:15], get_profile("x86-avx2"))
    assert result.fit.rules == FusionRules(True, False)
    predicted = result.fit.predict(featurize(specs[15:], np.ones(25, int),
                                             get_profile("x86-avx2"), result.fit.rules))
    assert np.max(np.abs(predicted / truth[15:] - 1)) < 0.03
    assert result.cross_validated["within_10pct"] == 1.0


def test_fit_prediction_is_the_roofline_of_the_written_profile(networks: list) -> None:
    space = get_space(SPACE)
    specs = [space.spec(p) for p in networks[:10]]
    device = _device()
    fit = Fit.of_profile(device)
    for batch in (1, 32):
        features = featurize(specs, np.full(10, batch), device, device.fusion)
        expected = model_for(fit.apply(device)).predict_many(specs, batch)
        assert np.allclose(fit.predict(features), expected, rtol=1e-9)


def _gpu_device():
    """A made-up asynchronous GPU: launches overlap the kernels, a dear residual add."""
    base = get_profile("rtx2080ti")
    efficiency = dict(base.efficiency)
    efficiency["conv"] = Efficiency(0.3, 0.5)
    return replace(base, efficiency=efficiency, kernel_overhead_us=40.0,
                   fusion=FusionRules(True, False),
                   model=ModelConfig("roofline", calibration={
                       "constant_ms": 0.8, "overlap": 1.0, "overhead_us.elementwise": 120.0,
                       **{f"overhead_us.{c}": 40.0 for c in ("conv", "depthwise", "linear",
                                                             "norm", "pool")}}))


def test_calibration_finds_overlapping_launches_and_class_overheads(networks: list) -> None:
    space = get_space(SPACE)
    specs = [space.spec(p) for p in networks]
    device = _gpu_device()
    truth = model_for(device).predict_many(specs, 32)
    result = calibrate(specs[:20], np.full(20, 32), truth[:20], get_profile("rtx2080ti"))
    assert result.fit.structure == Structure(True, False, True)
    assert set(result.structure_scores) == {s.label for s in STRUCTURES}
    assert result.structure_scores[result.fit.structure.label] == min(
        result.structure_scores.values())
    # the dear add is found: elementwise launches cost ~3x the others
    overhead = dict(zip(("conv", "depthwise", "linear", "norm", "elementwise", "pool"),
                        result.fit.overhead_ms, strict=True))
    assert 2.0 < overhead["elementwise"] / overhead["conv"] < 4.5
    predicted = result.fit.predict(featurize(specs[20:], np.full(20, 32),
                                             get_profile("rtx2080ti"), result.fit.rules))
    assert np.max(np.abs(predicted / truth[20:] - 1)) < 0.03


@pytest.mark.parametrize("structure", [Structure(True, True, False), Structure(True, True, True)])
def test_every_structure_is_the_roofline_of_the_saved_profile(networks: list, tmp_path: Path,
                                                            structure: Structure) -> None:
    """Fit.predict, the written (saved, reloaded) profile's model and Fit.of_profile agree,
    with the shape terms, the per-group and per-class overheads and overlap all on."""
    space = get_space(SPACE)
    specs = [space.spec(p) for p in networks[:12]]
    base = get_profile("x86-avx2")
    features = featurize(specs, np.full(12, 4), base, FusionRules(True, False))
    noise = np.exp(np.random.default_rng(1).normal(0.0, 0.1, 12))
    measured = model_for(base).predict_many(specs, 4) * noise
    fitted = fit(features, measured, base, structure)
    assert fitted.per_group_ms > 0 and np.all(fitted.shape > 0)
    path = tmp_path / "p.yaml"
    fitted.apply(base).save(path)
    saved = load_profile(path)
    assert saved.model is not None and ("overlap" in saved.model.calibration) == structure.overlap
    expected = model_for(saved).predict_many(specs, 4)
    assert np.allclose(fitted.predict(features), expected, rtol=1e-9)
    back = Fit.of_profile(saved)
    assert back.structure == structure
    assert np.allclose(back.predict(features), expected, rtol=1e-9)


def test_cli_calibrate_then_validate(networks: list, tmp_path: Path) -> None:
    space = get_space(SPACE)
    truth = model_for(_device()).predict_many([space.spec(p) for p in networks])
    path = tmp_path / "timed.csv"
    names = list(networks[0])
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["space", *names, "ms"])
        for point, ms in zip(networks, truth, strict=True):
            writer.writerow([SPACE, *[point[n] for n in names], f"{ms:.5f}"])
    out = tmp_path / "device.yaml"
    runner = CliRunner()
    result = runner.invoke(main, ["profile", "calibrate", "--base", "x86-avx2",
                                  "--measurements", str(path), "--column", "ms",
                                  "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)["cross_validated"]
    assert figures["n"] == 40 and figures["within_10pct"] > 0.9
    profile = load_profile(out)
    assert validation_summary(profile)["level"] == "cross-validated networks"
    assert profile.validation["calibration"]["measurements"][0]["sha256"].startswith("sha256:")
    result = runner.invoke(main, ["profile", "validate", str(out), "--measurements", str(path),
                                  "--column", "ms", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"within_10pct", "within_20pct", "spearman", "kendall", "mape", "n"} <= set(report)
    assert report["n"] == 40 and report["within_10pct"] > 0.9
    table = runner.invoke(main, ["profile", "validate", str(out), "--measurements", str(path),
                                 "--column", "ms"])
    assert table.exit_code == 0 and "whole networks" in table.output


def test_datasheet_profiles_say_they_were_never_checked() -> None:
    profile = get_profile("t4")
    assert validation_summary(profile) is None
    assert "never checked" in (warn_if_unvalidated(profile) or "")


def test_builtin_calibrated_profiles_carry_held_out_figures() -> None:
    profile = get_profile("rtx2080ti")
    summary = validation_summary(profile)
    assert summary is not None and summary["level"] == "held-out networks"
    assert summary["n"] > 1000 and warn_if_unvalidated(profile) is None
