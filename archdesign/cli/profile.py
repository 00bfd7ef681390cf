"""``archdesign profile``: import a measured table, measure this machine, calibrate from
measured networks, validate."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
from rich.console import Console

from archdesign.cli.common import Column, FiniteFloat, print_json, print_table
from archdesign.errors import InputError
from archdesign.files import check_output
from archdesign.hardware.profile import RUNTIMES

if TYPE_CHECKING:
    from archdesign.measurements import MeasurementFile

logger = logging.getLogger(__name__)


@click.group("profile")
def profile_command() -> None:
    """Build and check hardware profiles from measurements."""


@profile_command.command("import")
@click.option("--format", "fmt", type=click.Choice(["tinynas", "ofa"]), required=True)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Profile to write (hardware_profiles/NAME.yaml); the measurements go "
                   "beside it as NAME.measurements.csv.")
@click.option("--base", help="Datasheet profile for the roofline figures "
                             "[default: v100 for tinynas, rpi4 for ofa].")
@click.option("--batch", type=click.IntRange(min=1), help="Keep one batch size only.")
@click.option("--train-fraction", type=FiniteFloat(0, 1, min_open=True), default=0.8,
              show_default=True, help="Fraction fitted on; the rest is held out.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def import_command(fmt: str, paths: tuple[str, ...], out: str, base: str | None,
                   batch: int | None, train_fraction: float, seed: int, as_json: bool) -> None:
    """Import measured latency tables PATHS (TinyNAS or Once-for-All format)."""
    from archdesign.hardware.profile_io import import_profile

    check_output("--out", out, (".yaml",))
    profile = import_profile(fmt, [Path(p) for p in paths], Path(out), base, batch,
                             train_fraction, seed)
    figures = profile.validation.get("kernels", {})
    if as_json:
        print_json({"profile": str(profile.path), **profile.validation})
        return
    console = Console()
    console.print(f"wrote {profile.path} ({profile.validation.get('entries')} entries)")
    _figures_table(console, figures, "held-out kernels")


def _figures_table(console: Console, figures: dict[str, dict[str, float]], title: str) -> None:
    print_table(console, title,
                [Column("model", kind="name"), Column("within ±10%"),
                 Column("within ±20%", drop=1), Column("Spearman"), Column("Kendall", drop=2),
                 Column("median APE %"), Column("n")],
                [[kind, f"{m['within_10pct']:.1%}",
                  f"{m['within_20pct']:.1%}" if "within_20pct" in m else "-",
                  f"{m['spearman']:.4f}", f"{m['kendall']:.4f}" if "kendall" in m else "-",
                  f"{m['mape']:.1f}", str(m["n"])]
                 for kind, m in figures.items() if isinstance(m, dict) and "n" in m])


@profile_command.command("measure")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Profile to write; the timed networks are appended beside it to "
                   "NAME.measurements.csv as they are timed (run again to resume).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--runtime", type=click.Choice(["onnxruntime", "torch"]),
              help="Runtime to time in [default: onnxruntime on cpu, torch on cuda].")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Intra-op threads (fixed; one inter-op thread, sequential execution).")
@click.option("--clock", type=click.Choice(["cpu", "wall"]),
              help="Latency clock: the thread's CPU time (one thread on cpu only) or wall "
                   "time [default: cpu for one thread on cpu, else wall].")
@click.option("--calibration", "calibration", type=click.IntRange(min=3), default=20,
              show_default=True, help="Networks the profile is calibrated on.")
@click.option("--networks", type=click.IntRange(min=0), default=40, show_default=True,
              help="Held-out networks it is validated on.")
@click.option("--repeats", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed samples per network in each of the two passes.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--max-mflops", type=FiniteFloat(min=0, min_open=True), default=1500.0,
              show_default=True, help="Draw networks with at most this many MMACs.")
@click.option("--spaces", default="mobilenet,resnet-basic,resnet-bottleneck,regnet,convnext",
              show_default=True)
@click.option("--resolutions", default="96,128,160,192,224", show_default=True,
              help="Input resolutions to draw from (those a space allows).")
@click.option("--base", help="Datasheet profile the calibration starts from "
                             "[default: x86-avx2 on cpu, v100 on cuda].")
@click.option("--minutes", type=FiniteFloat(min=0, min_open=True),
              help="Stop timing once this long has passed (the output says so) [default: "
                   "no limit].")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def measure_command(out: str, device: str, runtime: str | None, threads: int,
                    clock: str | None, calibration: int, networks: int, repeats: int,
                    batch: int, max_mflops: float, spaces: str, resolutions: str,
                    base: str | None, minutes: float | None, seed: int,
                    as_json: bool) -> None:
    """Profile this machine: time whole networks in a runtime, calibrate, validate."""
    from archdesign.hardware.measure import (
        SampleConfig,
        Timer,
        check_device,
        default_clock,
        measure_profile,
    )

    check_output("--out", out, (".yaml",))
    check_device(device)
    try:
        sizes = tuple(int(r) for r in resolutions.split(",") if r.strip())
    except ValueError:
        raise InputError(f"--resolutions: expected comma-separated integers, got "
                         f"{resolutions!r}") from None
    sample = SampleConfig(spaces=tuple(s.strip() for s in spaces.split(",") if s.strip()),
                          max_mflops=max_mflops, resolutions=sizes or None)
    timer = Timer(device, clock or default_clock(device, threads), repeats=repeats, seed=seed)
    result = measure_profile(out, device, threads, runtime, base, batch, calibration,
                             networks, sample, seed, minutes, timer=timer,
                             progress=not as_json)
    profile = result.profile
    validation = profile.validation if profile is not None else {}
    summary: dict[str, Any] = {"profile": str(profile.path) if profile is not None else None,
               "measurements": str(result.measurements), "timed": result.timed,
               "networks": result.networks, "interrupted": result.interrupted,
               "budget_spent": result.budget_spent, "repeatability": result.repeatability,
               **{k: validation[k] for k in ("cross_validated", "held_out") if k in validation}}
    if as_json:
        print_json(summary)
        return
    console = Console()
    rep = result.repeatability
    stopped = [why for why, hit in (("interrupted", result.interrupted),
                                    ("time budget spent", result.budget_spent)) if hit]
    resume = f"; {', '.join(stopped)}: run again to resume" if stopped else ""
    console.print(f"{result.measurements}: {result.networks} networks ({result.timed} timed "
                  f"now{resume})")
    if rep["n"]:
        console.print(f"repeatability: {rep['within_5pct']:.0%} of {rep['n']} networks' two "
                      f"independent passes agree within ±5% (median difference "
                      f"{rep['median_pass_difference']:.1%}, {timer.clock} clock)")
    if profile is None:
        console.print("[yellow]too few calibration networks timed: no profile written[/]")
        return
    console.print(f"wrote {profile.path} ({profile.runtime}, {profile.device})")
    figures = {"cross-validated": validation["cross_validated"]}
    if "held_out" in validation:
        figures["held out"] = validation["held_out"]
        if "repeatable" in validation["held_out"]:
            figures["held out, repeats ±5%"] = validation["held_out"]["repeatable"]
    _figures_table(console, figures, "predicted vs measured, whole networks")


def _measurement_options(func: Any) -> Any:
    """--measurements FILE --space --column --batch: a measurement file (one row a network)."""
    for option in reversed([
        click.option("--measurements", type=click.Path(exists=True, dir_okay=False),
                     help="Measurement file (CSV, one row per network: a spec or a space "
                          "point, optional resolution and batch, the latency in ms)."),
        click.option("--space", help="Search space of every row (else a 'space' column)."),
        click.option("--column", default="latency_ms", show_default=True,
                     help="Column holding the measured latency (ms)."),
        click.option("--batch", type=click.IntRange(min=1),
                     help="Batch of rows without a 'batch' column [default: 1]; with --data, "
                          "keep this batch size only."),
    ]):
        func = option(func)
    return func


def _read(measurements: str, column: str, space: str | None,
          batch: int | None) -> MeasurementFile:
    from archdesign.measurements import read_measurements

    return read_measurements(measurements, column=column, space=space, batch=batch or 1)


@profile_command.command("calibrate")
@click.option("--base", required=True, help="Datasheet profile (name or YAML) whose peaks "
                                            "and bandwidth the fit starts from.")
@_measurement_options
@click.option("--runtime", type=click.Choice(RUNTIMES),
              help="Runtime the networks were timed in (the profile names it).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Calibrated profile to write (YAML).")
@click.option("--json", "as_json", is_flag=True, help="Print the cross-validated figures.")
def calibrate_command(base: str, measurements: str | None, space: str | None, column: str,
                      batch: int | None, runtime: str | None, out: str, as_json: bool) -> None:
    """Fit a device model to whole networks timed on the device (5-20 are enough)."""
    from archdesign.hardware.calibrate import calibrate_measurements
    from archdesign.hardware.profile import get_profile

    if measurements is None:
        raise click.UsageError("calibrate needs --measurements FILE")
    data = _read(measurements, column, space, batch)
    # the measurements say nothing of the machine: a calibrated profile is of no machine
    start = replace(get_profile(base), runtime=runtime, machine={})
    profile, result = calibrate_measurements(start, data, out, runtime or "")
    figures = profile.validation["cross_validated"]
    if as_json:
        print_json({"profile": str(profile.path), "networks": len(data.rows),
                    "skipped": data.skipped, "cross_validated": figures,
                    "fusion": profile.validation["calibration"]["fusion_scores"]})
        return
    console = Console()
    console.print(f"wrote {profile.path}: calibrated on {len(data.rows)} networks "
                  f"({data.skipped} rows skipped); fusion conv+norm+act "
                  f"{result.fit.rules.conv_norm_act}, residual add {result.fit.rules.residual_add}")
    _figures_table(console, {"calibrated": figures}, "cross-validated (k-fold) networks")


@profile_command.command("validate")
@click.argument("profile")
@_measurement_options
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="Measured table (TinyNAS format) to validate on; entries the profile was "
                   "fitted on are skipped.")
@click.option("--model", "kind", type=click.Choice(["roofline", "table", "fitted"]),
              help="Model to validate [default: the profile's].")
@click.option("--json", "as_json", is_flag=True)
def validate_command(profile: str, measurements: str | None, space: str | None, column: str,
                     batch: int | None, data: str | None, kind: str | None,
                     as_json: bool) -> None:
    """Predicted against measured for PROFILE: whole networks (--measurements) or kernels."""
    from archdesign.hardware.profile import get_profile
    from archdesign.hardware.validate import validate_networks, validate_profile

    console = Console()
    if measurements is not None:
        report = validate_networks(get_profile(profile), _read(measurements, column, space,
                                                                batch), kind)
        if as_json:
            print_json(report)
            return
        print_table(console, f"{report['profile']} ({report['model']}) on {report['data']}",
                    [Column("line"), Column("network", kind="text"), Column("batch", drop=1),
                     Column("measured ms"), Column("predicted ms"), Column("error")],
                    [[str(row["line"]), row["network"], str(row["batch"]),
                      f"{row['measured_ms']:.3f}", f"{row['predicted_ms']:.3f}",
                      f"{row['predicted_ms'] / row['measured_ms'] - 1:+.1%}"]
                     for row in report["networks"]])
        _figures_table(console, {report["model"]: report}, "whole networks")
        return
    result = validate_profile(get_profile(profile), data, kind, batch=batch)
    if as_json:
        print_json(result)
        return
    figures = {result["model"]: {k: result[k] for k in ("within_10pct", "spearman", "mape", "n")}}
    if result["n"] == 0 or np.isnan(result["within_10pct"]):
        console.print("no held-out measurements to validate on")
    else:
        _figures_table(console, figures, f"{result['profile']}: held-out {result['level']}s")
    if "networks" in result:
        _figures_table(console, result["networks"], "held-out networks (from profile measure)")
