"""The per-block choice program (OFA, FBNet, NAS-Bench-Macro): its model against the exact
figures, its bound against brute force, its certificates on the registered spaces."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest

from archdesign.objectives import get_objective
from archdesign.optimize import Budgets, DesignRules, Problem, design
from archdesign.optimize.choices import (
    ChoiceNode,
    ChoiceRelaxation,
    ChoiceSolver,
    build_choice_model,
    model_figures,
    probe_structure,
    shared_models,
)
from archdesign.optimize.posynomial import ModelingError
from archdesign.optimize.relaxation import BOUND_MARGIN
from archdesign.spaces import SearchSpace, get_space, load_space

TINY = Path(__file__).with_name("tiny-choices.yaml")
NO_KERNEL_RULE = DesignRules(max_kernel_ratio=None)  # CIFAR-sized maps end at 4x4 or less


@pytest.fixture(scope="module")
def tiny() -> SearchSpace:
    return load_space(TINY)


def test_the_probe_finds_depths_slots_and_outer_parameters() -> None:
    st = probe_structure(get_space("ofa-mbv3"), {})
    assert [(d.param, d.stage, d.values, d.blocks) for d in st.depths] == \
        [(f"d{i}", i, (2, 3, 4), (2, 3, 4)) for i in range(1, 6)]
    assert st.outer == ["resolution"] and st.idle == []
    assert len(st.slots) == 20
    first, third = st.slots[0], st.slots[2]
    assert first.position == (1, 0) and first.params == ("ks0", "e0") and first.depth is None
    assert len(first.options) == 9
    assert third.position == (1, 2) and third.depth == 0  # dropped at depth 2
    fbnet = probe_structure(get_space("fbnet"), {})
    assert fbnet.depths == [] and fbnet.outer == []
    assert [s.params for s in fbnet.slots] == [(f"op{i}",) for i in range(22)]
    assert all(len(s.options) == 9 for s in fbnet.slots)


def test_a_block_without_choices_that_a_depth_drops_is_a_slot(tiny: SearchSpace) -> None:
    st = probe_structure(tiny, {})
    assert [(s.position, s.params, len(s.options), s.depth) for s in st.slots] == [
        ((0, 0), ("k0", "e0"), 4, None), ((0, 1), ("k1", "e1"), 4, 0),
        ((0, 2), ("k2", "e2"), 4, 0), ((1, 0), ("k3", "e3"), 4, None),
        ((1, 1), ("k4", "e4"), 4, None), ((1, 2), (), 1, 1)]


@pytest.mark.parametrize(("name", "hardware", "batch"), [
    ("ofa-mbv3", "pixel3", 1), ("ofa-mbv3", "rtx2080ti", 32), ("fbnet", "gtx1080ti", 32),
    ("nas-bench-macro", None, 1)])
def test_the_model_gives_the_exact_figures_at_random_networks(name: str, hardware: str | None,
                                                              batch: int) -> None:
    """Costs, peak memory, ρ, the calibrated latency and the DeepMAD score of the per-block
    model equal the exact evaluation, elastic depths included."""
    space = get_space(name)
    budgets = Budgets(flops=1e12, batch=batch, latency_ms=1e6 if hardware else None)
    problem = Problem(space, budgets, hardware=hardware)
    objective = get_objective("deepmad")
    st = probe_structure(space, {})
    rng = np.random.default_rng(7)
    models = {}
    for _ in range(25):
        params = space.sample(rng)
        combo = {k: params[k] for k in st.outer}
        key = tuple(combo.items())
        if key not in models:
            models[key] = build_choice_model(space, problem, objective, st, combo)  # type: ignore[arg-type]
        model = models[key]
        spec = space.decode(params)
        exact = {**problem.figures(spec), "score": objective.score(spec)}
        got = model_figures(model, objective, model.indicator(params)[None], batch,  # type: ignore[arg-type]
                            "float32")
        assert set(got) == set(exact)
        for figure, value in got.items():
            assert value.shape == (1,)
            assert float(value[0]) == pytest.approx(exact[figure], rel=1e-9), figure


def test_the_node_problem_is_dpp() -> None:
    space = get_space("ofa-mbv3")
    problem = Problem(space, Budgets(flops=3e8, rho=0.5))
    st = probe_structure(space, {})
    objective = get_objective("deepmad")
    model = build_choice_model(space, problem, objective, st, {"resolution": 224})  # type: ignore[arg-type]
    relax = ChoiceRelaxation(model, problem, objective)  # type: ignore[arg-type]
    assert relax.problem.is_dpp()


@pytest.mark.parametrize("budgets", [
    Budgets(flops=9e6, rho=0.5),
    Budgets(params=1.5e5, peak_activation_bytes=1.2e5),
    Budgets(flops=6e6, params=1.2e5, rho=0.4),
], ids=["flops+rho", "params+peak", "flops+params+rho"])
def test_the_exact_optimum_of_an_elastic_space(tiny: SearchSpace, brute_force: Callable,
                                               budgets: Budgets) -> None:
    """With no tolerance the certified design is the brute-force optimum over all 12,288
    assignments (elastic depths, per-block kernels and expansions, two resolutions)."""
    problem = Problem(tiny, budgets, rules=NO_KERNEL_RULE)
    best = brute_force(problem)
    result = design(tiny, budgets, rules=NO_KERNEL_RULE, tolerance=0.0)
    assert result.status == "optimal"
    assert result.score == pytest.approx(best.score, rel=1e-9)
    assert result.upper_bound is not None and result.upper_bound >= best.score
    assert result.gap is not None and result.gap <= 1e-4


def test_the_exact_optimum_under_a_calibrated_latency_budget(tiny: SearchSpace,
                                                             brute_force: Callable) -> None:
    """Every block option has a constant latency share, so a latency budget on a
    calibrated GPU profile at batch 32 is in the bound in full."""
    budgets = Budgets(latency_ms=2.8, batch=32)
    problem = Problem(tiny, budgets, hardware="rtx2080ti", rules=NO_KERNEL_RULE)
    best = brute_force(problem)
    result = design(tiny, budgets, hardware="rtx2080ti", rules=NO_KERNEL_RULE, tolerance=0.0)
    assert result.score == pytest.approx(best.score, rel=1e-9)
    assert result.figures["latency_ms"] <= 2.8
    free = design(tiny, Budgets(batch=32), hardware="rtx2080ti", rules=NO_KERNEL_RULE)
    assert free.figures["latency_ms"] > 2.8  # the budget binds
    assert result.latency_certified is not None and \
        result.latency_certified.startswith("all of it: the roofline model of rtx2080ti")


def test_nas_bench_macro_is_certified_by_the_program(brute_force: Callable) -> None:
    space = get_space("nas-bench-macro")
    budgets = Budgets(flops=3e7, rho=0.3)
    best = brute_force(Problem(space, budgets, rules=NO_KERNEL_RULE))
    result = design(space, budgets, rules=NO_KERNEL_RULE, tolerance=0.0)
    assert result.score == pytest.approx(best.score, rel=1e-9)
    assert result.nodes < 6561  # fewer relaxations than networks


@pytest.mark.parametrize(("name", "budgets"), [
    ("ofa-mbv3", Budgets(flops=3e8, rho=0.5)),
    ("fbnet", Budgets(flops=3e8, params=4e6, rho=0.5)),
])
def test_registered_spaces_certify_their_gap(name: str, budgets: Budgets) -> None:
    result = design(name, budgets, rules=NO_KERNEL_RULE)
    assert result.status == "optimal" and result.gap is not None
    assert result.gap <= 0.005 + 3 * BOUND_MARGIN
    assert result.figures["flops"] <= budgets.flops  # type: ignore[operator]
    assert result.figures["rho"] <= 0.5
    assert set(result.shadow_prices) == set(budgets.items())
    again = design(name, budgets, rules=NO_KERNEL_RULE)
    assert (again.params, again.score, again.upper_bound, again.nodes) == \
        (result.params, result.score, result.upper_bound, result.nodes)


def test_a_space_whose_parameters_change_many_blocks_is_not_per_block() -> None:
    """resnet-basic's widths each change several blocks: too many outer assignments."""
    problem = Problem(get_space("resnet-basic"), Budgets(flops=2e9))
    with pytest.raises(ModelingError, match="assignments"):
        ChoiceSolver(problem, {}, 0.005, 10, None)


def test_the_kernel_rule_reads_every_blocks_own_kernel() -> None:
    """OFA's largest subnet has 7x7 kernels on the last 7x7 feature map: the rule
    (kernel <= map / 1.5) sees each block's kernel, not the stage's unused default; FBNet's
    identity blocks have no kernel to check."""
    rules = DesignRules()
    ofa = get_space("ofa-mbv3")
    assert rules.violations(ofa.decode(ofa.defaults())) == \
        ["stage 6 kernel 7 > feature map 7 / 1.5"]
    small = ofa.decode({**ofa.defaults(), **{f"ks{b}": 3 for b in range(16, 20)}})
    assert rules.violations(small) == []
    fbnet = get_space("fbnet")
    params = {**fbnet.defaults(), **{f"op{b}": "skip" for b in range(17, 22)}}
    assert rules.violations(fbnet.decode(params)) == []
    assert rules.violations(fbnet.decode({**params, "op20": "k5_e6"})) == \
        ["stage 6 kernel 5 > feature map 7 / 1.5"]


def test_the_kernel_rule_rules_out_block_options_exactly(tiny: SearchSpace,
                                                         brute_force: Callable) -> None:
    """At 48 px the second stage ends at 6x6, where 5x5 kernels break the rule: those
    options are out of the program, and its optimum is brute force's under the rule."""
    budgets = Budgets(flops=9e6, rho=0.5)
    problem = Problem(tiny, budgets)
    best = brute_force(problem)
    result = design(tiny, budgets, tolerance=0.0)
    assert result.score == pytest.approx(best.score, rel=1e-9)
    assert DesignRules().violations(result.spec) == []
    solver = ChoiceSolver(problem, {}, 0.0, 10, None)
    model = solver.models[solver.combos.index({"resolution": 48})]
    k3 = solver.structure.slots[3]  # stage 2's first block: (k3, e3)
    assert k3.params == ("k3", "e3")
    assert [model.rule_excluded[i] for i in model.slot_range(3)] == \
        [option[0] == 5 for option in k3.options]


def _fbnet_latency_problem() -> tuple[Problem, Budgets]:
    """FBNet within a third of its largest network's latency on the calibrated GTX 1080 Ti
    at batch 32 (bench_mp's fbnet/latency row)."""
    space = get_space("fbnet")
    largest = space.decode({**space.defaults(), **{f"op{i}": "k5_e6" for i in range(22)}})
    full = Problem(space, Budgets(latency_ms=1e6, batch=32), hardware="gtx1080ti")
    budgets = Budgets(latency_ms=full.figures(largest)["latency_ms"] / 3, batch=32)
    return Problem(space, budgets, hardware="gtx1080ti"), budgets


def test_a_step_moves_a_block_to_any_of_its_options() -> None:
    """An FBNet layer moves to every other op, not only to its neighbours in the choices
    list, the best move first; an OFA block moves its kernel and expansion together, and a
    block past its stage's depth does not move."""
    problem, _ = _fbnet_latency_problem()
    solver = ChoiceSolver(problem, {}, 0.005, 10, None)
    params = problem.space.defaults()  # every op k3_e6: over the latency budget
    moves = solver.moves(params, set(solver.fixed))
    ops = problem.space.parameter("op0").choices
    assert sorted((name, cand[name]) for name, cand in moves) == \
        sorted((f"op{i}", op) for i in range(22) for op in ops if op != "k3_e6")
    assert all(sum(cand[k] != v for k, v in params.items()) == 1 for _, cand in moves)
    bounds = solver.merit_bounds([cand for _, cand in moves])
    assert bounds is not None
    merits = [solver._merit(problem.evaluate(cand)) for _, cand in moves]
    assert all(merit <= bound for merit, bound in zip(merits, bounds, strict=True))
    best = max(range(len(moves)), key=lambda i: bounds[i])
    assert merits[best] == max(merits)

    ofa = Problem(get_space("ofa-mbv3"), Budgets(flops=3e8, rho=0.5))
    solver = ChoiceSolver(ofa, {"resolution": 224}, 0.005, 10, None)
    params = {**ofa.space.defaults(), "resolution": 224, "d1": 2, "ks0": 3, "e0": 3}
    moved = [{k for k, v in cand.items() if params[k] != v} for _, cand in solver.moves(
        params, set(solver.fixed))]
    assert {"ks0", "e0"} in moved  # to kernel 5 or 7 with expansion 4 or 6
    assert {"d1"} in moved and {"d2"} in moved  # grid steps of the depths
    assert not any(m & {"ks2", "e2", "ks3", "e3", "resolution"} for m in moved)
    assert sum(m <= {"ks0", "e0"} for m in moved) == 8


class _Unscreened(ChoiceSolver):
    def merit_bounds(self, cands: list[dict]) -> None:
        return None


def test_screening_passes_over_no_better_move_and_keeps_the_steps() -> None:
    """Against a feasible and an infeasible best alike, a move the model passes over
    recounts no better; a local search takes the same steps with far fewer recounts."""
    problem, _ = _fbnet_latency_problem()
    screened = ChoiceSolver(problem, {}, 0.005, 10, None)
    plain = _Unscreened(problem, {}, 0.005, 10, None)
    start = problem.space.defaults()
    ends = [solver.local_search(start, max_steps=8) for solver in (screened, plain)]
    assert ends[0].params == ends[1].params and ends[0].feasible
    seen = list(plain.cache.values())
    bests = [ev for ev in seen if ev.feasible][:3] + [ev for ev in seen if not ev.feasible][:3]
    rejected = {0: 0, 1: 0}
    for best in bests:
        merit = screened._merit(best)
        cands = [cand for _, cand in screened.moves(best.params, set(screened.fixed))]
        bounds = screened.merit_bounds(cands)
        assert bounds is not None
        for cand, bound in zip(cands, bounds, strict=True):
            assert screened._merit(problem.evaluate(cand)) <= bound
            rejected[merit[0]] += bound <= merit
    assert rejected[0] > 0 and rejected[1] > 0
    assert 3 * len(screened.cache) < len(plain.cache)


def test_fbnet_within_a_latency_budget_certifies_early() -> None:
    """Moves to any op find the incumbent that closes the gap: 41 nodes (1,001 and a 1.04%
    gap with grid steps of the choices list)."""
    _, budgets = _fbnet_latency_problem()
    result = design("fbnet", budgets, hardware="gtx1080ti")
    assert result.status == "optimal" and result.gap is not None
    assert result.gap <= 0.005 + 3 * BOUND_MARGIN
    assert result.nodes < 100
    assert result.score == pytest.approx(12611.665, rel=1e-6)
    assert result.figures["latency_ms"] <= budgets.latency_ms  # type: ignore[operator]
    assert result.latency_certified is not None


def test_shared_models_serve_problems_that_differ_only_in_their_budgets() -> None:
    """Within a shared_models block (one MP seeding sweep) a new budget reuses the probed
    structure and the verified models; another batch (other latency shares) does not."""
    space = get_space("fbnet")

    def solver(budgets: Budgets) -> ChoiceSolver:
        return ChoiceSolver(Problem(space, budgets, hardware="gtx1080ti"), {}, 0.005, 10, None)

    with shared_models():
        first = solver(Budgets(latency_ms=10.0, batch=32))
        again = solver(Budgets(latency_ms=20.0, batch=32, rho=0.5))
        other = solver(Budgets(latency_ms=10.0, batch=1))
    outside = solver(Budgets(latency_ms=10.0, batch=32))
    assert again.models is first.models and again.structure is first.structure
    assert other.models is not first.models and outside.models is not first.models
    assert other.models[0].sums["latency_ms"][0] < first.models[0].sums["latency_ms"][0]
    np.testing.assert_array_equal(outside.models[0].sums["latency_ms"],
                                  first.models[0].sums["latency_ms"])


# -- reduced-cost fixing: a design of a node using entry i scores at most value - reduced[i]

def _bfs_nodes(solver: ChoiceSolver, roots: list[ChoiceNode], count: int) -> list[ChoiceNode]:
    """The first ``count`` nodes a breadth-first branching reaches from ``roots`` solved
    with duals (no incumbent: nothing is fixed), root and branched alike."""
    queue, out = list(roots), []
    while queue and len(out) < count:
        node = queue.pop(0)
        solver.bound(node)
        if node.sol is None or node.sol.reduced is None:
            continue
        out.append(node)
        queue += solver.branch(node)
    return out


def _params(solver: ChoiceSolver, node: ChoiceNode, depth: dict[int, int],
            options: dict[int, int]) -> dict:
    st, m = solver.structure, solver.models[node.combo]
    params = {**st.base, **m.combo}
    for j, d in enumerate(st.depths):
        params[d.param] = d.values[depth[j]]
    for k, o in options.items():
        params.update(zip(st.slots[k].params, st.slots[k].options[o], strict=True))
    return params


def _open(allowed: np.ndarray, r: range) -> list[int]:
    return [o for o, i in enumerate(r) if allowed[i]]


def _every_design(solver: ChoiceSolver, node: ChoiceNode) -> Iterator[dict]:
    st, m = solver.structure, solver.models[node.combo]
    for dv in itertools.product(*[_open(node.allowed, m.depth_range(j))
                                  for j in range(len(st.depths))]):
        depth = dict(enumerate(dv))
        active = [k for k, s in enumerate(st.slots) if st.active(s, depth)]
        for ov in itertools.product(*[_open(node.allowed, m.slot_range(k)) for k in active]):
            yield _params(solver, node, depth, dict(zip(active, ov, strict=True)))


def _forced(solver: ChoiceSolver, node: ChoiceNode, i: int) -> np.ndarray:
    """The node's allowed entries with entry i the only choice of its slot or stage (a
    slot's stage at a depth that holds it): x_i = 1 in its relaxation."""
    st, m = solver.structure, solver.models[node.combo]
    allowed = node.allowed.copy()
    for r in [m.depth_range(j) for j in range(len(st.depths))] + \
            [m.slot_range(k) for k in range(len(st.slots))]:
        if i in r:
            allowed[r.start:r.stop] = False
            allowed[i] = True
    k = next((k for k in range(len(st.slots)) if i in m.slot_range(k)), None)
    if k is not None and st.slots[k].depth is not None:
        j = st.slots[k].depth
        for v, e in enumerate(m.depth_range(j)):
            allowed[e] &= st.depths[j].blocks[v] > st.slots[k].position[1]
    return allowed


def _rounded(solver: ChoiceSolver, node: ChoiceNode, allowed: np.ndarray, x: np.ndarray,
             rng: np.random.Generator, count: int) -> Iterator[dict]:
    """Designs drawn choice by choice from relaxed shares x (allowed entries only)."""
    st, m = solver.structure, solver.models[node.combo]

    def draw(r: range) -> int:
        idx = _open(allowed, r)
        p = np.maximum([x[r[o]] for o in idx], 0.0) + 1e-4
        return idx[rng.choice(len(idx), p=p / p.sum())]

    for _ in range(count):
        depth = {j: draw(m.depth_range(j)) for j in range(len(st.depths))}
        yield _params(solver, node, depth, {k: draw(m.slot_range(k))
                                            for k, s in enumerate(st.slots)
                                            if st.active(s, depth)})


def _caps_hold(problem: Problem, solver: ChoiceSolver, node: ChoiceNode,
               designs: Iterable[dict]) -> tuple[float, float, int]:
    """Over the designs within the relaxation's constraints (summed budgets, ρ): the
    least of value - reduced[i] - score over the entries i each uses, with the node's
    value and with its raw optimum (BOUND_MARGIN taken off), and how many designs."""
    m, sol = solver.models[node.combo], node.sol
    assert sol is not None and sol.reduced is not None and sol.value > 1
    raw = sol.value / (1 + BOUND_MARGIN)
    worst, worst_raw, n = math.inf, math.inf, 0
    for params in designs:
        ev = problem.evaluate(params)
        if any(ev.figures[name] > limit for name, limit in problem.limits.items()
               if name in m.sums) or ev.figures["rho"] > (problem.budgets.rho or math.inf):
            continue
        used = m.indicator(params) > 0.5
        assert not (used & ~node.allowed).any()
        reduced = float(sol.reduced[used].max())
        worst = min(worst, sol.value - reduced - ev.score)
        worst_raw = min(worst_raw, raw - reduced - ev.score)
        n += 1
    return worst, worst_raw, n


@pytest.mark.parametrize("budgets", [
    Budgets(flops=9e6, rho=0.5),
    Budgets(flops=6e6, params=1.2e5, rho=0.4),
], ids=["flops+rho", "flops+params+rho"])
def test_reduced_costs_bound_every_design_of_a_node(tiny: SearchSpace, budgets: Budgets) -> None:
    """Reduced-cost fixing's claim, on every design of the tiny space's roots and branched
    nodes: a design using entry i scores at most value − reduced[i]. It needs no tolerance
    (worst slack 0.022 of a 0.026 margin); without BOUND_MARGIN it would fail by up to
    1.4e-3 (5e-7 of the score: Clarabel's gap tolerance), a fifth of the margin."""
    problem = Problem(tiny, budgets, rules=NO_KERNEL_RULE)
    solver = ChoiceSolver(problem, {}, 0.0, 10, None)
    nodes = _bfs_nodes(solver, solver.roots(), 6)
    assert len(nodes) == 6 and any(not n.allowed[~solver.models[n.combo].rule_excluded].all()
                                   for n in nodes)  # branched nodes among them
    for node in nodes:
        worst, worst_raw, n = _caps_hold(problem, solver, node, _every_design(solver, node))
        assert n > 0
        assert worst >= 0.0
        assert worst_raw >= -0.2 * BOUND_MARGIN * node.sol.value  # type: ignore[union-attr]
        print(f"least slack {worst:.4g}, without the margin {worst_raw:.4g} ({n} designs)")


@pytest.mark.parametrize(("name", "budgets", "combo"), [
    ("fbnet", Budgets(flops=3e8, params=4e6, rho=0.5), 0),
    ("ofa-mbv3", Budgets(flops=3e8, rho=0.5), 1),
])
def test_reduced_costs_bound_the_node_with_an_entry_forced(name: str, budgets: Budgets,
                                                           combo: int) -> None:
    """On a registered space, at a root and its branched nodes, every allowed entry i:
    the relaxation with x_i = 1 (every design using i, and more) is at most value −
    reduced[i], and so are designs rounded from its optimum. Observed: the forced optimum
    comes within 0.0077 of the cap (7e-7 of the score; the margin is 1e-5)."""
    problem = Problem(get_space(name), budgets, rules=NO_KERNEL_RULE)
    solver = ChoiceSolver(problem, {}, 0.0, 10, None)
    nodes = _bfs_nodes(solver, [solver.roots()[combo]], 2)
    assert len(nodes) == 2
    rng = np.random.default_rng(0)
    checked, worst = 0, math.inf
    for node in nodes:
        sol, relax = node.sol, solver.relaxations[node.combo]
        assert sol is not None and sol.reduced is not None
        node_raw = sol.value / (1 + BOUND_MARGIN)
        designs = []
        for i in np.flatnonzero(node.allowed):
            allowed = _forced(solver, node, i)
            forced = relax.solve(allowed)
            if forced is None or not math.isfinite(forced.value):
                continue  # infeasible with x_i = 1, or the solve failed: no bound to check
            forced_raw = float(relax.problem.value) / relax.scale
            cap = sol.value - sol.reduced[i]
            assert forced_raw <= cap, i
            worst = min(worst, cap - forced_raw)
            assert forced_raw <= node_raw - sol.reduced[i] + 0.2 * BOUND_MARGIN * node_raw, i
            checked += 1
            designs += _rounded(solver, node, allowed, forced.x, rng, 2)
        least, _, n = _caps_hold(problem, solver, node, designs)
        assert n > 0 and least >= 0.0
    assert checked > 250
    print(f"{name}: {checked} entries, least slack {worst:.4g}")


def test_a_failed_solve_is_not_read_as_the_previous_ones(tiny: SearchSpace,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """cvxpy leaves a problem's status, value and duals those of its last solve when
    the solver raises: a node whose solve fails is kept open, with no reduced costs,
    rather than given another node's bound and duals."""
    problem = Problem(tiny, Budgets(flops=9e6, rho=0.5), rules=NO_KERNEL_RULE)
    solver = ChoiceSolver(problem, {}, 0.0, 10, None)
    relax = solver.relaxations[0]
    allowed = np.ones(solver.models[0].nx, bool)
    assert relax.solve(allowed).reduced is not None  # type: ignore[union-attr]

    def fail(*args: object, **kwargs: object) -> None:
        raise cp.error.SolverError("failed")

    monkeypatch.setattr(relax.problem, "solve", fail)
    sol = relax.solve(allowed)
    assert sol is not None and sol.value == math.inf and sol.reduced is None
