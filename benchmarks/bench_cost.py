"""Analytic cost evaluation rate vs fvcore tracing of the built modules, in one run.

    python benchmarks/bench_cost.py [--specs 20000] [--fvcore-specs 12] [--seed 0]
                                    [--spaces a,b,...]

Two workloads, drawn from every built-in search space, each timed from empty memo caches:
independent uniform samples (the worst case: almost every block is new) and mutation
chains (each spec one re-sampled parameter away from the last, as an evolutionary or
local search produces them); and the batched path (`cost_many`) over the independent
samples, which expands each structure of block once on numpy arrays. fvcore builds each
module and traces it with FlopCountAnalysis + ActivationCountAnalysis.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fvcore_reference import fvcore_counts

from archdesign.cost import block_cost, cost, cost_many
from archdesign.layers import block_layers
from archdesign.spaces import get_space, list_spaces
from archdesign.spec import ArchSpec


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
    start = time.perf_counter()
    for spec in specs:
        cost(spec)
    return len(specs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specs", type=int, default=20000)
    parser.add_argument("--fvcore-specs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spaces", default=",".join(list_spaces()),
                        help="comma-separated spaces to draw from (default: every one)")
    args = parser.parse_args()
    names = args.spaces.split(",")

    specs = draw_specs(args.specs, args.seed, names)
    chains = mutation_chains(args.specs, args.seed, names)
    block_cost.cache_clear()
    block_layers.cache_clear()
    cold = rate(specs)
    warm = statistics.median(rate(specs) for _ in range(5))
    block_cost.cache_clear()
    block_layers.cache_clear()
    search_like = rate(chains)
    batched = []
    for _ in range(3):
        block_cost.cache_clear()
        block_layers.cache_clear()
        start = time.perf_counter()
        cost_many(specs)
        batched.append(len(specs) / (time.perf_counter() - start))

    # fvcore on small-resolution variants of the same specs (tracing at full resolution
    # is several times slower still, so this favours the baseline).
    subset = specs[: args.fvcore_specs]
    times = []
    mismatches = 0
    for spec in subset:
        if spec.resolution > 64:
            spec = ArchSpec.from_dict({**spec.to_dict(), "resolution": 64})
        start = time.perf_counter()
        ref = fvcore_counts(spec)
        times.append(time.perf_counter() - start)
        mismatches += ref["flops"] != cost(spec).flops or ref["params"] != cost(spec).params
    fvcore_rate = 1.0 / statistics.median(times)

    print(f"specs drawn from {', '.join(names)}: {len(specs)}")
    print(f"{'path':<40}{'specs/s':>12}")
    print(f"{'analytic, independent samples, cold':<40}{cold:>12,.0f}")
    print(f"{'analytic, same samples again (median of 5)':<40}{warm:>12,.0f}")
    print(f"{'analytic, mutation chains, cold':<40}{search_like:>12,.0f}")
    print(f"{'analytic, cost_many batch, cold (median 3)':<40}{statistics.median(batched):>12,.0f}")
    print(f"{'fvcore build+trace (median)':<40}{fvcore_rate:>12,.2f}")
    print(f"ratio to fvcore: independent {cold / fvcore_rate:,.0f}x, "
          f"mutation chains {search_like / fvcore_rate:,.0f}x, "
          f"batch {statistics.median(batched) / fvcore_rate:,.0f}x")
    print(f"fvcore mismatches on {len(subset)} specs: {mismatches}")


if __name__ == "__main__":
    main()
