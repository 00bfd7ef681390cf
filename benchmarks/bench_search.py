"""Search benchmark: hypervolume per strategy, driver overhead, Ray throughput.

Per problem (space, hardware profile, budgets) the same number of evaluations for every
strategy, and one hypervolume frame (fixed by the space, profile and budgets) for all:

1. hypervolume of mp+nsga2, nsga2, tpe and random at N evaluations, gp at 60, and of
   nsga2 at 10·N (the target: mp+nsga2 at N beats nsga2 at 10·N), on MobileNet under a
   latency budget and on ResNet-bottleneck under a FLOPs and a latency budget;
2. time per trial of ``run_search`` (journal storage, one record per trial) against a
   bare Optuna ask/tell loop on an in-memory study with the same sampler and evaluations;
3. analytic evaluation throughput in process (and by stage) and with 1 and 2 Ray workers;
4. what Ray is for: the Zen-NAS objective and measured latency with 1 and 2 workers.

    python benchmarks/bench_search.py            # N = 1000
    python benchmarks/bench_search.py --quick    # N = 150, no 10·N run
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from archdesign.evaluate import EvalConfig, LocalEvaluator, RayEvaluator
from archdesign.metrics import format_metric
from archdesign.runs import RunDir
from archdesign.search import SearchConfig, distributions, make_sampler, run_search
from archdesign.spaces import get_space

#: The problems of the hypervolume comparison: space and budgets (on --hardware).
PROBLEMS: dict[str, tuple[str, dict[str, float]]] = {
    "mobilenet": ("mobilenet", {"latency": 4.0}),
    "resnet-bottleneck": ("resnet-bottleneck", {"latency": 800.0, "flops": 20e9}),
}
#: In-process analytic evaluations per second the evaluator must reach (issue 12).
THROUGHPUT_TARGET = 10_000
#: GP trials: Optuna's GP refits on every trial (seconds each), so it runs at this size.
GP_TRIALS = 60


def hypervolumes(space: str, hardware: str, budgets: dict[str, float], n: int, full: bool,
                 seed: int, workdir: Path) -> list[tuple[str, int, float, int, float]]:
    rows = []
    plan = [("mp+nsga2", n), ("nsga2", n), ("tpe", n), ("random", n), ("gp", min(n, GP_TRIALS))]
    if full:
        plan.append(("nsga2", 10 * n))
    for strategy, trials in plan:
        config = SearchConfig(space, hardware, budgets=budgets, strategy=strategy,
                              trials=trials, seed=seed)
        started = time.perf_counter()
        result = run_search(config, RunDir(workdir / f"{space}-{strategy}-{trials}"))
        rows.append((strategy, trials, result.hypervolume, result.feasible,
                     time.perf_counter() - started))
    return rows


def overhead(space: str, hardware: str, budgets: dict[str, float], n: int, seed: int,
             workdir: Path) -> tuple[float, float]:
    """Seconds per trial: run_search, and a bare Optuna loop doing the same work."""
    import optuna

    config = SearchConfig(space, hardware, budgets=budgets, strategy="nsga2", trials=n,
                          seed=seed)
    started = time.perf_counter()
    run_search(config, RunDir(workdir / "overhead"))
    ours = (time.perf_counter() - started) / n

    evaluator = LocalEvaluator(config.eval_config)
    dists = distributions(get_space(space))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=make_sampler("nsga2", seed, config.population))
    done = 0
    while done < n:
        asked = [study.ask(dists) for _ in range(min(config.population, n - done))]
        for trial, result in zip(asked, evaluator.evaluate([(t.number, t.params)
                                                             for t in asked]), strict=True):
            if result.ok:
                for name, budget in budgets.items():
                    trial.set_constraint(name, result.metrics[name] / budget - 1)
                study.tell(trial, [result.metrics["score"], result.metrics["latency"]])
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            done += 1
    bare = (time.perf_counter() - started) / n
    return ours, bare


def throughput(space: str, hardware: str, n: int, seed: int) -> list[tuple[str, float]]:
    """Analytic evaluations per second (fresh random networks for each measurement).

    In process, as the driver runs it: the networks come decoded (the driver decodes every
    asked trial to find duplicates), so decoding is timed on its own; then each stage of
    the batched path alone; then Ray with 1 and 2 workers (which decode in the worker).
    """
    from archdesign.cost import cost_many
    from archdesign.hardware import get_profile, model_for
    from archdesign.objectives import effectiveness, get_objective
    from archdesign.objectives.deepmad import groups_many

    config = EvalConfig(space, hardware)
    sp = get_space(space)
    rng = np.random.default_rng(seed)
    rows = []
    local = LocalEvaluator(config)
    local.evaluate([(0, sp.sample(rng))])

    def fresh() -> tuple[list[Any], list[Any]]:
        candidates = [(i, sp.sample(rng)) for i in range(n)]
        return candidates, [local.decode(p) for _, p in candidates]

    def rate(fn: Any) -> float:
        started = time.perf_counter()
        fn()
        return n / (time.perf_counter() - started)

    # in process: the median of three rounds, each on fresh networks, then again on the
    # last round's (one load spike on a shared machine does not make the figure)
    cold = []
    for _ in range(3):
        candidates, specs = fresh()
        cold.append(rate(lambda: local.evaluate(candidates, specs)))  # noqa: B023
    rows.append(("in process, networks decoded by the driver (median of 3)",
                 float(np.median(cold))))
    rows.append(("  the same networks again (block memos warm)", float(np.median(
        [rate(lambda: local.evaluate(candidates, specs)) for _ in range(3)]))))
    candidates, specs = fresh()
    profile = get_profile(hardware)
    model, dtype, objective = model_for(profile), profile.precision, get_objective("deepmad")
    rows.append(("  stage: decode", rate(lambda: [local.decode(p) for _, p in candidates])))
    rows.append(("  stage: cost_many", rate(lambda: cost_many(specs, 1, dtype))))
    rows.append(("  stage: latency predict_many", rate(
        lambda: model.predict_many(specs, 1, dtype))))
    rows.append(("  stage: score and rho (groups_many)", rate(
        lambda: (groups_many(specs), [(objective.score(s), effectiveness(s))
                                      for s in specs]))))
    for workers in (1, 2):
        with RayEvaluator(config, workers=workers) as remote:
            remote.evaluate([(i, sp.sample(rng)) for i in range(64)])  # warm the workers
            batch, _ = fresh()
            rows.append((f"Ray, {workers} worker{'s' if workers > 1 else ''}",
                         rate(lambda: remote.evaluate(batch))))  # noqa: B023 (called here)
    return rows


def ray_scaling(space: str, hardware: str, n: int, seed: int) -> list[tuple[str, int, float]]:
    """What Ray is for: candidates per second with 1 and 2 workers, each on a local Ray
    instance of that many CPUs, for the Zen-NAS objective (a forward pass per candidate,
    DeepMAD-free) and for measured latency (timer actors, one timer slot per worker)."""
    import ray

    from archdesign.evaluate import TIMER_RESOURCE, MeasureConfig, measure_on_ray

    sp = get_space(space)
    rng = np.random.default_rng(seed)
    config = EvalConfig(space, hardware, objective="zen")
    rows = []
    for workers in (1, 2):
        with RayEvaluator(config, workers=workers) as remote:
            remote.evaluate([(i, sp.sample(rng)) for i in range(workers)])  # warm up
            candidates = [(i, sp.sample(rng)) for i in range(n)]
            started = time.perf_counter()
            remote.evaluate(candidates)
            rows.append(("Zen-NAS score", workers, n / (time.perf_counter() - started)))
    local = LocalEvaluator(EvalConfig(space, hardware))
    specs = [local.decode(sp.sample(rng)) for _ in range(n)]
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as temp:
            ray.init(address="local", num_cpus=workers, resources={TIMER_RESOURCE: workers},
                     include_dashboard=False, log_to_driver=False, configure_logging=False,
                     _temp_dir=temp)
            try:
                measure_on_ray(specs[:workers], MeasureConfig(repeats=3), actors=workers)
                started = time.perf_counter()
                measure_on_ray(specs, MeasureConfig(), actors=workers)
                rows.append(("measured latency", workers, n / (time.perf_counter() - started)))
            finally:
                ray.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 150, no 10·N run.")
    parser.add_argument("--space", default="mobilenet",
                        help="Space of the overhead, throughput and Ray sections.")
    parser.add_argument("--hardware", default="x86-avx2")
    parser.add_argument("--latency", type=float, default=4.0,
                        help="Latency budget (ms) of the overhead section.")
    parser.add_argument("--evaluations", type=int, help="N (default 1000, quick 150).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--problems", default=",".join(PROBLEMS),
                        help=f"Hypervolume problems, of {list(PROBLEMS)}.")
    parser.add_argument("--sections", default="hv,overhead,throughput,ray",
                        help="What to run: hv, overhead, throughput, ray (comma-separated).")
    parser.add_argument("--ray-candidates", type=int,
                        help="Candidates per Ray measurement (default 32, quick 8).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n = args.evaluations or (150 if args.quick else 1000)
    budgets = {"latency": args.latency}
    console = Console()
    sections = set(args.sections.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for problem in args.problems.split(",") if "hv" in sections else []:
            space, problem_budgets = PROBLEMS[problem]
            text = ", ".join(f"{k} <= {format_metric(k, v)}" for k, v in problem_budgets.items())
            table = Table(title=f"hypervolume at equal evaluations: {space} on {args.hardware}, "
                                f"{text} (one frame)")
            for col in ("strategy", "evaluations", "hypervolume", "feasible", "seconds"):
                table.add_column(col, justify="right")
            rows = hypervolumes(space, args.hardware, problem_budgets, n, not args.quick,
                                args.seed, workdir)
            for strategy, trials, hv, feasible, seconds in rows:
                table.add_row(strategy, str(trials), f"{hv:.4f}", str(feasible),
                              f"{seconds:.1f}")
            console.print(table)
            if not args.quick:
                ours_hv = next(hv for st, t, hv, *_ in rows if st == "mp+nsga2")
                target = next(hv for st, t, hv, *_ in rows if st == "nsga2" and t == 10 * n)
                console.print(f"mp+nsga2 at {n} vs nsga2 at {10 * n}: {ours_hv:.4f} vs "
                              f"{target:.4f} ({'met' if ours_hv > target else 'missed'})")
        if "overhead" in sections:
            ours, bare = overhead(args.space, args.hardware, budgets, n, args.seed, workdir)
            table = Table(title=f"time per trial (NSGA-II, same evaluations, {args.space}, "
                                f"latency <= {args.latency} ms)")
            table.add_column("loop")
            table.add_column("ms / trial", justify="right")
            table.add_row("archdesign run_search (journal, progress, results)",
                          f"{ours * 1e3:.2f}")
            table.add_row("bare Optuna ask/tell, in-memory study", f"{bare * 1e3:.2f}")
            table.add_row("overhead", f"{(ours - bare) * 1e3:.2f}")
            console.print(table)
    if "throughput" in sections:
        table = Table(title=f"analytic evaluation throughput ({args.space} on {args.hardware})")
        table.add_column("evaluator")
        table.add_column("evaluations / s", justify="right")
        rates = throughput(args.space, args.hardware, 4 * n, args.seed)
        for name, rate in rates:
            table.add_row(name, f"{rate:,.0f}")
        console.print(table)
        in_process = rates[0][1]
        console.print(f"in process: {in_process:,.0f} evaluations/s against the target of "
                      f"{THROUGHPUT_TARGET:,}/s "
                      f"({'met' if in_process >= THROUGHPUT_TARGET else 'missed'})")
    if "ray" in sections:
        table = Table(title="Ray where it pays: 1 vs 2 workers (each a local instance of that "
                            "many CPUs)")
        for col in ("evaluation", "workers", "candidates / s", "speed-up"):
            table.add_column(col, justify="right")
        rows = ray_scaling(args.space, args.hardware,
                           args.ray_candidates or (8 if args.quick else 32), args.seed)
        single = {name: rate for name, workers, rate in rows if workers == 1}
        for name, workers, rate in rows:
            table.add_row(name, str(workers), f"{rate:.2f}", f"{rate / single[name]:.2f}x")
        console.print(table)


if __name__ == "__main__":
    main()
