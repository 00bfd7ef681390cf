"""Objective benchmark (issue 13): does the score predict trained accuracy?

On the pycls ImageNet zoo (36 networks of one training recipe, top-1 error, all in the
archdesign zoo): every registered objective's Kendall tau, Spearman, tau within FLOPs
deciles and top-10% precision; the fitted objective's leave-one-out figures; the time per
evaluation of each objective (mean over the networks, this machine).

The forward-pass objectives (zen, naswot, synflow) run at ``--resolution`` (default 64,
every network at the same input size; ``0``: each network's own, 224-600 px, about an
hour on two cores) so the run stays short; the analytic ones always see the real network.

    python benchmarks/bench_objectives.py            # all 36 networks, about 5 minutes
    python benchmarks/bench_objectives.py --quick    # 12 networks at 32 px, under a minute
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from archdesign.measurements import read_measurements
from archdesign.objectives import get_objective, list_objectives
from archdesign.objectives.validate import fit, validate

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "accuracy" / \
    "pycls_imagenet_top1.csv"
FORWARD_PASS = ("zen", "naswot", "synflow")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--resolution", type=int, help="input size of zen/naswot/synflow "
                        "(default 64, 32 with --quick; 0: each network's own)")
    parser.add_argument("--file", type=Path, default=DATA)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    resolution = args.resolution if args.resolution is not None else (32 if args.quick else 64)

    measured = read_measurements(args.file, column="top1_err", positive=False)
    rows = list(measured.rows)
    if args.quick:  # every third network by error: the whole range, a third of the time
        rows = sorted(rows, key=lambda m: m.value)[::3]
    specs = [m.spec for m in rows]
    truth = [-m.value for m in rows]  # lower error is better

    objectives = [get_objective(n, resolution=resolution)
                  if n in FORWARD_PASS and resolution else get_objective(n)
                  for n in list_objectives()]
    scores = np.empty((len(specs), len(objectives)))
    seconds = []
    for k, objective in enumerate(objectives):
        start = time.perf_counter()
        scores[:, k] = [objective.score(spec) for spec in specs]
        seconds.append((time.perf_counter() - start) / len(specs))

    agreements = validate(specs, truth, objectives, scores=scores)
    fitted = fit(specs, truth, objectives, scores=scores)

    table = Table(title=f"{args.file.name}: {len(specs)} networks, top-1 error "
                        f"(forward-pass objectives at "
                        f"{f'{resolution} px' if resolution else 'their own resolution'})")
    for col in ("objective", "tau", "Spearman", "FLOPs-decile tau", "top-10%", "s / eval"):
        table.add_column(col, justify="left" if col == "objective" else "right",
                         no_wrap=col == "objective")

    def fmt(value: float) -> str:
        return "n/a" if np.isnan(value) else f"{value:.3f}"

    for a, s in zip(agreements, seconds, strict=True):
        table.add_row(a.objective, fmt(a.kendall_tau), fmt(a.spearman),
                      fmt(a.tau_within_flops), fmt(a.top10_precision), f"{s:.4f}")
    loo = fitted.held_out
    table.add_row("fitted, leave-one-out", fmt(loo.kendall_tau), fmt(loo.spearman),
                  fmt(loo.tau_within_flops), fmt(loo.top10_precision), "")
    console = Console()
    console.print(table)
    console.print("fitted weights (standardized scores): " + ", ".join(
        f"{t.objective} {t.weight:.3f}" for t in fitted.objective.terms))
    console.print("baseline: two training seeds of one macro space agree at tau ~0.88; "
                  "FLOPs alone ~0.55 there (published, MobileNetV2-style spaces)")
    if args.json:
        args.json.write_text(json.dumps({
            "n": len(specs), "resolution": resolution,
            "objectives": [{**a.to_dict(), "seconds_per_eval": s}
                           for a, s in zip(agreements, seconds, strict=True)],
            "fitted_leave_one_out": loo.to_dict(),
            "fitted": fitted.objective.settings()}, indent=2))


if __name__ == "__main__":
    main()
