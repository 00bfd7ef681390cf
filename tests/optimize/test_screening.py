"""The MP's cheap exact terms: point figures that match the recount, budget caps that never
cut a design out of a box, and local-search screening that changes no step."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from archdesign.optimize import Budgets, Problem
from archdesign.optimize.branching import Node
from archdesign.optimize.mp import _Solver
from archdesign.optimize.posynomial import grid, param_values, typed
from archdesign.spaces import SearchSpace, get_space

RESNET18 = Budgets(flops=1.82e9, params=11.69e6, rho=0.3)


@pytest.mark.parametrize(("name", "fixed"), [("resnet-bottleneck", {}),
                                             ("resnet-bottleneck-ratio", {}),
                                             ("deepmad-mbconv", {"resolution": 224})])
def test_point_figures_match_the_recount(name: str, fixed: dict) -> None:
    space = get_space(name)
    budgets = Budgets(flops=4e9, params=25e6, activations=3e7)
    problem = Problem(space, budgets)
    solver = _Solver(problem, 0.01, 10, None, fixed)
    rng = np.random.default_rng(5)
    checked = 0
    while checked < 10:
        params = {**space.sample(rng), **fixed}
        # the relaxation models the designs the rules allow (monotone widths)
        if not space.feasible(params) or problem.rules.violations(space.decode(params)):
            continue
        checked += 1
        ev = problem.evaluate(params)
        scores, costs = solver.relaxations[solver.combo_of(params)].point_figures([params])
        assert scores[0] == pytest.approx(ev.score, rel=1e-9)
        assert set(costs) == {"flops", "params", "activations", "rho"}
        for key, values in costs.items():
            assert values[0] == pytest.approx(ev.figures[key], rel=1e-9)


def _designs(space: SearchSpace) -> list[dict]:
    names = [p.name for p in space.parameters]
    values = [list(p.choices) if p.kind == "categorical" else [typed(p, v) for v in grid(p)]
              for p in space.parameters]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def test_budget_caps_never_cut_a_design_of_the_box(tiny_space: SearchSpace) -> None:
    """Random boxes of the enumerable space, tightened by the budgets: every design of the
    box within the budgets stays in the tightened box, and a box it empties holds none."""
    budgets = Budgets(flops=2.0e6, params=20e3)
    problem = Problem(tiny_space, budgets)
    solver = _Solver(problem, 0.0, 10, None, {})
    designs = [(p, problem.evaluate(p)) for p in _designs(tiny_space)]
    fitting = [p for p, ev in designs
               if all(ev.usage[k] <= v for k, v in budgets.items().items())]
    rng = np.random.default_rng(0)
    tightened = emptied = 0
    for _ in range(40):
        lo, hi = [], []
        for g in solver.grids:
            a, b = sorted(int(v) for v in rng.integers(len(g), size=2))
            lo.append(a)
            hi.append(b)
        depths = tuple(tuple(sorted({int(v) for v in rng.choice(param_values(p), size=2)}))
                       for p in solver.depth_params)
        kernels = tuple(tuple(range(len(param_values(p)))) for p in solver.kernel_params)
        node = Node(0, tuple(lo), tuple(hi), depths, kernels)
        inside = [p for p in fitting if _in_box(solver, node, p)]
        out = solver.tighten(node)
        if out is None:
            emptied += 1
            assert not inside
            continue
        tightened += out.hi != node.hi
        assert all(_in_box(solver, out, p) for p in inside)
    assert tightened and emptied  # the caps do cut boxes down, and empty some


def _in_box(solver: _Solver, node: Node, params: dict) -> bool:
    sizes = all(node.lo[i] <= solver.grid_index[i][float(params[p.name])] <= node.hi[i]
                for i, p in enumerate(solver.sizes))
    return sizes and all(int(params[p.name]) in node.depths[j]
                         for j, p in enumerate(solver.depth_params))


def test_screening_passes_over_no_better_candidate_and_keeps_the_steps() -> None:
    """Against a feasible and an infeasible best alike, a candidate whose merit bound is at
    most the best's recounts no better; a local search takes the same steps with fewer
    recounts."""
    space = get_space("resnet-bottleneck")
    problem = Problem(space, RESNET18)
    screened = _Solver(problem, 0.01, 10, None, {})
    plain = _Solver(problem, 0.01, 10, None, {}, screen=False)
    start = space.defaults()
    ends = [solver.local_search(start, max_steps=8).params for solver in (screened, plain)]
    assert ends[0] == ends[1]
    # the points the plain search recounted, feasible and not, as the best so far
    seen = list(plain.cache.values())
    bests = [ev for ev in seen if ev.feasible][:4] + [ev for ev in seen if not ev.feasible][:4]
    rejected = {0: 0, 1: 0}
    for best in bests:
        merit = screened._merit(best)
        cands = [cand for _, cand in screened._neighbors(best.params, set())]
        bounds = screened.merit_bounds(cands)
        assert bounds is not None and plain.merit_bounds(cands) is None
        for cand, bound in zip(cands, bounds, strict=True):
            assert screened._merit(problem.evaluate(cand)) <= bound
            rejected[merit[0]] += bound <= merit
    assert rejected[0] > 0 and rejected[1] > 0
    fresh = _Solver(problem, 0.01, 10, None, {})
    fresh.local_search(start, max_steps=8)
    assert len(fresh.cache) < len(plain.cache)
