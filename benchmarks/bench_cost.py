"""Analytic cost evaluation rate vs fvcore tracing of the built modules, in one run.

    python benchmarks/bench_cost.py [--specs 20000] [--fvcore-specs 12] [--seed 0]
                                    [--spaces a,b,...] [--baseline-tree DIR [--rounds 2]]

Two workloads, drawn from the chosen built-in search spaces (default: every one), each
timed from empty memo caches: independent uniform samples (the worst case: almost every
block is new) and mutation chains (each spec one re-sampled parameter away from the last,
as an evolutionary or local search produces them); the batched path (`cost_many`) over
the independent samples, which expands each structure of block once on numpy arrays; and
the other analytic figures a search evaluates per candidate: the DeepMAD score with its
effectiveness rho, and roofline latency (`predict_many`, x86-avx2), from cold caches and
warm. Rates are specs per second of this process's CPU time (less sensitive than wall
time to other load on the machine), medians of repeats. fvcore builds each module and
traces it with FlopCountAnalysis + ActivationCountAnalysis.

``--baseline-tree DIR`` times the same analytic workloads in subprocesses that import
archdesign from DIR (a checkout of an earlier commit, e.g. ``git worktree add /tmp/old
REV``) and from this tree, alternately (``--rounds``, medians), and prints the two beside
each other with the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from archdesign.cost import block_cost, cost, cost_many
from archdesign.layers import block_layers
from archdesign.spaces import get_space, list_spaces
from archdesign.spec import ArchSpec

ROOT = Path(__file__).resolve().parents[1]
LATENCY_PROFILE = "x86-avx2"


def draw_specs(n: int, seed: int, names: list[str]) -> list[ArchSpec]:
    rng = np.random.default_rng(seed)
    spaces = [get_space(name) for name in names]
    return [spaces[i % len(spaces)].sample_spec(rng) for i in range(n)]


def mutation_chains(n: int, seed: int, names: list[str]) -> list[ArchSpec]:
    """What an evolutionary or local search scores: each spec differs from the previous
    one of its space by one re-sampled parameter."""
    rng = np.random.default_rng(seed)
    spaces = [get_space(name) for name in names]
    current = [space.sample(rng) for space in spaces]
    out = []
    for i in range(n):
        space, params = spaces[i % len(spaces)], current[i % len(spaces)]
        while True:
            param = space.parameters[int(rng.integers(len(space.parameters)))]
            child = {**params, param.name: param.sample(rng)}
            if space.feasible(child):
                break
        current[i % len(spaces)] = child
        out.append(space.decode(child))
    return out


def rate(specs: list[ArchSpec]) -> float:
    start = time.process_time()
    for spec in specs:
        cost(spec)
    return len(specs) / (time.process_time() - start)


def timed(n: int, run: Callable[[], object], reset: Callable[[], None] | None = None,
          repeats: int = 3) -> float:
    """Median specs/s of ``run`` (``reset`` before each repeat, untimed)."""
    rates = []
    for _ in range(repeats):
        if reset is not None:
            reset()
        start = time.process_time()
        run()
        rates.append(n / (time.process_time() - start))
    return statistics.median(rates)


def clear_costs() -> None:
    block_cost.cache_clear()
    block_layers.cache_clear()


def analytic_rates(names: list[str], n: int, seed: int) -> dict[str, float]:
    """Specs/s of every analytic path, in order of the table's rows."""
    from archdesign.hardware import get_profile, model_for
    from archdesign.hardware.kernels import block_kernels
    from archdesign.objectives import deepmad as deepmad_module
    from archdesign.objectives import get_objective
    from archdesign.objectives.deepmad import effectiveness

    specs = draw_specs(n, seed, names)
    chains = mutation_chains(n, seed, names)
    out: dict[str, float] = {}
    clear_costs()
    out["cost, independent samples, cold"] = rate(specs)
    out["cost, same samples again"] = statistics.median(rate(specs) for _ in range(5))
    clear_costs()
    out["cost, mutation chains, cold"] = rate(chains)
    out["cost_many batch, cold"] = timed(n, lambda: cost_many(specs), clear_costs)
    out["cost_many batch, warm"] = timed(n, lambda: cost_many(specs))
    deepmad = get_objective("deepmad")

    def score() -> None:
        for spec in specs:
            deepmad.score(spec)
            effectiveness(spec)

    # a --baseline-tree from before clear_memos memoized with lru_caches
    clear_memos = getattr(deepmad_module, "clear_memos", None)

    def clear_groups() -> None:
        if clear_memos is None:
            deepmad_module.groups.cache_clear()
        else:  # the blocks' entropy kept
            deepmad_module._GROUPS.clear()

    def clear_scores() -> None:
        clear_costs()
        if clear_memos is None:
            deepmad_module.block_entropy.cache_clear()
            deepmad_module.groups.cache_clear()
        else:
            clear_memos()

    out["DeepMAD score + rho, cold"] = timed(n, score, clear_scores)
    out["DeepMAD score + rho, warm blocks"] = timed(n, score, clear_groups)
    if clear_memos is not None:
        def score_batched() -> None:
            deepmad_module.groups_many(specs)
            score()

        out["DeepMAD groups_many + score + rho, cold"] = timed(n, score_batched,
                                                               clear_scores)
    profile = get_profile(LATENCY_PROFILE)
    models: list[Any] = []

    def fresh_model() -> None:
        clear_costs()
        block_kernels.cache_clear()
        models[:] = [model_for(profile)]

    out[f"latency predict_many ({LATENCY_PROFILE}), cold"] = timed(
        n, lambda: models[0].predict_many(specs), fresh_model)
    out[f"latency predict_many ({LATENCY_PROFILE}), warm"] = timed(
        n, lambda: models[0].predict_many(specs))
    return out


def tree_rates(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """:func:`analytic_rates` in a subprocess that imports archdesign from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run(
        [sys.executable, __file__, "--rates-json", "--specs", str(args.specs),
         "--seed", str(args.seed), "--spaces", args.spaces],
        env=env, cwd=tree, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"{tree}: the timing run failed:\n{result.stderr}")
    rates: dict[str, float] = json.loads(result.stdout.splitlines()[-1])
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specs", type=int, default=20000)
    parser.add_argument("--fvcore-specs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spaces", default=",".join(list_spaces()),
                        help="comma-separated spaces to draw from (default: every one)")
    parser.add_argument("--baseline-tree", type=Path, default=None,
                        help="a checkout of an earlier commit to time the same way")
    parser.add_argument("--rounds", type=int, default=2,
                        help="with --baseline-tree: alternate runs of each tree (medians)")
    parser.add_argument("--rates-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.spaces.split(",")
    if args.rates_json:  # the baseline subprocess: rates only, as one JSON line
        print(json.dumps(analytic_rates(names, args.specs, args.seed)))
        return

    if args.baseline_tree is None:
        rates = analytic_rates(names, args.specs, args.seed)
        baseline = None
    else:  # both trees in subprocesses, alternately: the machine's load drifts
        runs: dict[Path, list[dict[str, float]]] = {ROOT: [], args.baseline_tree: []}
        for _ in range(args.rounds):
            for tree, results in runs.items():
                results.append(tree_rates(tree, args))
        rates, baseline = ({name: statistics.median(r[name] for r in results)
                            for name in results[0]} for results in runs.values())

    # fvcore on small-resolution variants of the same specs (tracing at full resolution
    # is several times slower still, so this favours the baseline).
    sys.path.insert(0, str(ROOT / "tests"))
    from fvcore_reference import fvcore_counts

    subset = draw_specs(args.specs, args.seed, names)[: args.fvcore_specs]
    times = []
    mismatches = 0
    for spec in subset:
        if spec.resolution > 64:
            spec = ArchSpec.from_dict({**spec.to_dict(), "resolution": 64})
        start = time.process_time()
        ref = fvcore_counts(spec)
        times.append(time.process_time() - start)
        mismatches += ref["flops"] != cost(spec).flops or ref["params"] != cost(spec).params
    fvcore_rate = 1.0 / statistics.median(times)

    print(f"specs drawn from {', '.join(names)}: {args.specs}")
    if baseline is None:
        print(f"{'path (specs/s of CPU time)':<48}{'this tree':>12}")
        for name, value in rates.items():
            print(f"{name:<48}{value:>12,.0f}")
    else:
        print(f"baseline: archdesign from {args.baseline_tree}; medians of {args.rounds} "
              f"alternate runs of each tree")
        print(f"{'path (specs/s of CPU time)':<48}{'this tree':>12}{'baseline':>12}"
              f"{'ratio':>8}")
        for name, value in rates.items():
            old = baseline.get(name)
            cells = (f"{old:>12,.0f}{value / old:>7.2f}x" if old
                     else f"{'n/a':>12}{'':>8}")
            print(f"{name:<48}{value:>12,.0f}{cells}")
    print(f"{'fvcore build+trace (median)':<48}{fvcore_rate:>12,.2f}")
    independent, chains, batched = (rates[f"cost{name}, cold"] for name in (
        ", independent samples", ", mutation chains", "_many batch"))
    print(f"ratio to fvcore: independent {independent / fvcore_rate:,.0f}x, "
          f"mutation chains {chains / fvcore_rate:,.0f}x, batch {batched / fvcore_rate:,.0f}x")
    print(f"fvcore mismatches on {len(subset)} specs: {mismatches}")


if __name__ == "__main__":
    main()
