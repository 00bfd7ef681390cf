"""MP designer vs the evolutionary and Optuna baselines on the DeepMAD ResNet problems.

For the budgets of ResNet-18, -34 and -50 (FLOPs, params, ρ <= 0.3, 224x224) in the
``resnet-bottleneck-ratio`` space, run the MP designer, then the reference-style evolutionary
search and Optuna (TPE) each with 10x the MP's wall time, and print score, certified gap
and wall time. The MP is bounded by nodes (its default limit), so its rows are the same
on any machine; only the wall times (and so the baselines' budgets) vary. ``--quick``:
ResNet-18 only, 100 nodes (a smoke run).

    python benchmarks/bench_mp.py [--quick] [--mp-nodes 1000] [--factor 10]
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from rich.console import Console
from rich.table import Table

from archdesign.optimize import Budgets, Problem, design
from archdesign.optimize.baselines import evolutionary, optuna_search
from archdesign.optimize.mp import DEFAULT_MAX_NODES
from archdesign.spaces import get_space

PROBLEMS = {
    "resnet18": Budgets(flops=1.82e9, params=11.69e6, rho=0.3),
    "resnet34": Budgets(flops=3.68e9, params=21.80e6, rho=0.3),
    "resnet50": Budgets(flops=4.13e9, params=25.55e6, rho=0.3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mp-nodes", type=int, default=DEFAULT_MAX_NODES)
    parser.add_argument("--factor", type=float, default=10.0,
                        help="baseline wall time as a multiple of the MP's")
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    space = get_space("resnet-bottleneck-ratio")
    names = ["resnet18"] if args.quick else list(PROBLEMS)
    mp_nodes = 100 if args.quick else args.mp_nodes
    factor = 2.0 if args.quick else args.factor
    rows = []
    console = Console(width=170)
    for name in names:
        budgets = PROBLEMS[name]
        result = design(space, budgets, tolerance=args.tolerance, max_nodes=mp_nodes)
        rows.append({"problem": name, "method": "MP (cvxpy B&B)", "score": result.score,
                     "upper_bound": result.upper_bound, "gap": result.gap,
                     "seconds": result.seconds, "evaluations": result.nodes,
                     "flops": result.figures["flops"], "params": result.figures["params"],
                     "rho": result.figures["rho"]})
        budget_s = factor * result.seconds
        problem = Problem(space, budgets)
        for method in ("evolutionary", "optuna-tpe"):
            t0 = time.perf_counter()
            base = (evolutionary(problem, time_limit=budget_s, seed=0)
                    if method == "evolutionary"
                    else optuna_search(problem, "tpe", time_limit=budget_s, seed=0))
            best = base.best
            rows.append({"problem": name, "method": base.name, "score": base.score,
                         "upper_bound": None,
                         "gap": (result.upper_bound - base.score) / abs(base.score)
                         if best else None,
                         "seconds": time.perf_counter() - t0, "evaluations": base.evaluations,
                         "flops": best.figures["flops"] if best else None,
                         "params": best.figures["params"] if best else None,
                         "rho": best.figures["rho"] if best else None})
    table = Table(title="DeepMAD ResNet problems in resnet-bottleneck-ratio (gap vs the MP's "
                        "certified upper bound)")
    for col in ("problem", "method", "score", "upper bound", "gap", "wall s", "evals/nodes",
                "FLOPs", "params", "ρ"):
        table.add_column(col, justify="left" if col in ("problem", "method") else "right")
    for r in rows:
        table.add_row(r["problem"], r["method"], f"{r['score']:.1f}",
                      "" if r["upper_bound"] is None else f"{r['upper_bound']:.1f}",
                      "" if r["gap"] is None else f"{100 * r['gap']:.2f}%",
                      f"{r['seconds']:.1f}", str(r["evaluations"]),
                      "" if r["flops"] is None else f"{r['flops'] / 1e9:.3f}G",
                      "" if r["params"] is None else f"{r['params'] / 1e6:.2f}M",
                      "" if r["rho"] is None else f"{r['rho']:.3f}")
    console.print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
