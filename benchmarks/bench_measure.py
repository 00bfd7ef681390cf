"""Local measurement benchmark: how far `profile measure` on this machine can be trusted.

One run of ``measure_profile`` (``archdesign profile measure``'s code): networks drawn
from the search spaces, timed end to end in ONNX Runtime on one CPU thread (warm-up, two
interleaved passes, the thread's CPU time beside wall time), k = 20 of them calibrated on
(``profile calibrate``'s code), the others held out. Printed, from the same samples:

- repeatability: the fraction of networks whose two independent passes agree within ±5%,
  on the thread-CPU clock and on the wall clock;
- within ±10%, Spearman and median APE of the calibrated profile on the held-out networks,
  all of them and those whose measurement repeats within ±5% (target >= 90%), for a
  profile calibrated on CPU time and one calibrated on wall time (the same rows' wall
  column, calibrated and validated the same way);
- baselines on the same held-out networks: the uncalibrated datasheet roofline
  (x86-avx2) and a FLOPs-linear fit on the same k networks; and the calibrated figures
  per search space (where the model falls short).

On a shared machine, wall time includes the time other processes take the core; the thread
CPU time does not (it still sees their cache and memory-bandwidth contention).

    python benchmarks/bench_measure.py                # k = 20, 60 held out, <= 1500 MMACs
    python benchmarks/bench_measure.py --quick        # k = 20, 15 held out, <= 600 MMACs
    python benchmarks/bench_measure.py --out DIR      # keep (and resume) the measurements
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from archdesign.cost import cost_many
from archdesign.hardware.calibrate import calibrate_measurements
from archdesign.hardware.measure import (
    REPEAT_TOLERANCE,
    SampleConfig,
    Timer,
    measure_profile,
    repeatability,
)
from archdesign.hardware.models import model_for
from archdesign.hardware.profile import get_profile
from archdesign.hardware.validate import metrics, predict_measured
from archdesign.measurements import MeasurementFile, read_measurements


def figures_row(table: Table, label: str, m: dict[str, Any], note: str = "") -> None:
    table.add_row(label, f"{m['within_10pct']:.1%}", f"{m['spearman']:.4f}",
                  f"{m['mape']:.1f}", str(m["n"]), note)


def subset(data: MeasurementFile, lines: set[int]) -> MeasurementFile:
    return replace(data, rows=tuple(m for m in data.rows if m.line in lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    parser.add_argument("--k", type=int, default=20, help="calibration networks")
    parser.add_argument("--networks", type=int, help="held-out networks")
    parser.add_argument("--repeats", type=int, default=5, help="samples per pass")
    parser.add_argument("--max-mflops", type=float, help="cap on drawn networks (MMACs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="directory to keep the measurements in (resumable)")
    parser.add_argument("--json", help="also write all figures to this JSON file")
    args = parser.parse_args()
    networks = args.networks or (15 if args.quick else 60)
    max_mflops = args.max_mflops or (600.0 if args.quick else 1500.0)
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="archdesign-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console()

    timer = Timer("cpu", "cpu", repeats=args.repeats, seed=args.seed)
    start = time.perf_counter()
    result = measure_profile(out_dir / "local.yaml", calibration_networks=args.k,
                             networks=networks, sample=SampleConfig(max_mflops=max_mflops),
                             seed=args.seed, timer=timer, progress=True)
    minutes = (time.perf_counter() - start) / 60
    if result.profile is None:
        raise SystemExit("too few networks timed to calibrate")
    with result.measurements.open(newline="") as f:
        rows = list(csv.DictReader(f))
    ratio = {clock: np.array([float(r[f"{prefix}pass2_ms"]) / float(r[f"{prefix}pass1_ms"])
                              for r in rows])
             for clock, prefix in (("cpu", ""), ("wall", "wall_"))}
    role = {i + 2: r["role"] for i, r in enumerate(rows)}
    results: dict[str, Any] = {"measurements": str(result.measurements), "minutes": minutes,
                               "k": args.k, "held_out": networks, "max_mflops": max_mflops,
                               "repeatability": {c: repeatability(r) for c, r in ratio.items()}}
    table = Table(title=f"this machine ({result.profile.device}): calibrated on k = {args.k}, "
                        f"held-out networks")
    for col in ("setting", "within ±10%", "Spearman", "median APE %", "n", "note"):
        table.add_column(col, justify="left" if col in ("setting", "note") else "right")
    datasheet = get_profile("x86-avx2")
    for clock, column in (("cpu", "latency_ms"), ("wall", "wall_ms")):
        data = read_measurements(result.measurements, column=column)
        cal = subset(data, {line for line, r in role.items() if r == "calibration"})
        test = subset(data, {line for line, r in role.items() if r == "test"})
        steady = subset(test, {m.line for m in test.rows
                               if abs(ratio[clock][m.line - 2] - 1) <= REPEAT_TOLERANCE})
        profile, _ = calibrate_measurements(datasheet, cal, out_dir / f"local-{clock}.yaml",
                                            "onnxruntime")
        model = model_for(profile)
        figures = {"all": metrics(predict_measured(model, test), np.array(test.values)),
                   "repeatable": metrics(predict_measured(model, steady),
                                         np.array(steady.values))}
        # baselines on the same repeatable held-out networks, fitted on the same k
        flops = np.asarray(cost_many(cal.specs)["flops"], dtype=np.float64)
        slope, intercept = np.polyfit(flops, np.array(cal.values), 1)
        test_flops = np.asarray(cost_many(steady.specs)["flops"], dtype=np.float64)
        measured = np.array(steady.values)
        figures["flops_linear"] = metrics(slope * test_flops + intercept, measured)
        figures["datasheet"] = metrics(predict_measured(model_for(datasheet), steady),
                                       measured)
        if clock == "cpu":  # where the calibrated model falls short: per space
            predicted = predict_measured(model, steady)
            space = np.array([rows[m.line - 2]["space"] for m in steady.rows])
            figures["by_space"] = {name: metrics(predicted[space == name],
                                                 measured[space == name])
                                   for name in sorted(set(space.tolist()))}
        results[clock] = figures
        figures_row(table, f"{clock} clock, calibrated", figures["all"], "all held out")
        figures_row(table, f"{clock} clock, calibrated", figures["repeatable"],
                    "passes agree ±5% (target >= 90%)")
        figures_row(table, f"{clock} clock, FLOPs-linear", figures["flops_linear"],
                    f"fitted on the same k = {args.k}; repeatable")
        figures_row(table, f"{clock} clock, datasheet x86-avx2", figures["datasheet"],
                    "uncalibrated; repeatable")
    for name, m in results["cpu"]["by_space"].items():
        figures_row(table, f"cpu clock, calibrated: {name}", m, "repeatable")
    console.print(table)
    for clock, rep in results["repeatability"].items():
        console.print(f"repeatability ({clock} clock): {rep['within_5pct']:.0%} of {rep['n']} "
                      f"networks' two passes agree within ±5% (median difference "
                      f"{rep['median_pass_difference']:.1%}, p90 "
                      f"{rep['p90_pass_difference']:.1%})")
    walls = np.array([float(r["wall_ms"]) for r in rows])
    cpus = np.array([float(r["cpu_ms"]) for r in rows])
    console.print(f"wall / thread CPU time: median {np.median(walls / cpus):.2f}x (1.00x on an "
                  f"idle core; more is time other processes took); {len(rows)} networks, "
                  f"{result.timed} timed in {minutes:.1f} min; measurements in "
                  f"{result.measurements}")
    results["wall_over_cpu_median"] = float(np.median(walls / cpus))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
