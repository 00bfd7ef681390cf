"""The MP designer: exact on an enumerable space, budgets respected exactly, honest bounds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest

from archdesign.cost import cost
from archdesign.errors import InputError
from archdesign.hardware import get_profile, list_profiles, model_for
from archdesign.hardware.models import RooflineModel
from archdesign.objectives import DeepMAD, effectiveness, get_objective
from archdesign.optimize import Budgets, DesignRules, Problem, design
from archdesign.optimize.branching import Node
from archdesign.optimize.choices import shared_models
from archdesign.optimize.mp import _Solver
from archdesign.optimize.posynomial import (
    ModelingError,
    Tie,
    build_model,
    grid,
    model_costs,
    model_latency,
    param_values,
    roofline_terms,
    verify_latency,
)
from archdesign.optimize.relaxation import (
    BOUND_MARGIN,
    HullRelaxation,
    NodeBox,
    solve_clarabel,
)
from archdesign.spaces import SearchSpace, get_space, list_spaces, load_space

CASES = [
    Budgets(flops=1.2e6),
    Budgets(peak_activation_bytes=120e3, params=40e3),
    Budgets(flops=2.0e6, params=20e3),
    Budgets(params=30e3, rho=0.3),
    Budgets(flops=3.0e6, params=40e3, rho=0.25),
]


@pytest.mark.parametrize("budgets", CASES, ids=lambda b: str(b.items()))
def test_exact_optimum_on_an_enumerable_space(tiny_space: SearchSpace, budgets: Budgets,
                                              brute_force: Callable) -> None:
    problem = Problem(tiny_space, budgets)
    best = brute_force(problem)
    assert best is not None
    result = design(tiny_space, budgets, tolerance=0.0)
    assert result.status == "optimal"
    assert result.score == pytest.approx(best.score, rel=1e-6)
    assert result.upper_bound >= result.score
    assert result.gap <= 3 * BOUND_MARGIN  # proven up to the solver's accuracy
    # the design respects every budget when recounted, with no tolerance
    c = cost(result.spec)
    for name, limit in budgets.items().items():
        value = effectiveness(result.spec) if name == "rho" else getattr(c, name)
        assert value <= limit
    assert result.score == pytest.approx(get_objective("deepmad").score(result.spec))
    for name in result.binding:  # a binding budget has a price
        assert result.shadow_prices[name]["per_unit"] >= 0


@pytest.mark.parametrize("budgets", [Budgets(flops=1.5e6), Budgets(params=25e3, rho=0.3)],
                         ids=lambda b: str(b.items()))
def test_exact_optimum_with_tied_widths(budgets: Budgets, brute_force: Callable) -> None:
    """A stride-1 stage that may repeat its input width (then it has no projection):
    the MP still finds the brute-force optimum."""
    space = load_space(Path(__file__).with_name("tiny-tied.yaml"))
    best = brute_force(Problem(space, budgets))
    result = design(space, budgets, tolerance=0.0)
    assert result.status == "optimal"
    assert result.score == pytest.approx(best.score, rel=1e-6)
    assert result.upper_bound >= result.score


def test_exact_optimum_under_a_roofline_latency_budget(tiny_space: SearchSpace,
                                                      brute_force: Callable) -> None:
    """The roofline latency is in the relaxation: the MP proves the brute-force optimum of
    a latency-bound problem (no design notes that the bound ignores latency)."""
    budgets = Budgets(latency_ms=0.12, rho=0.3)
    best = brute_force(Problem(tiny_space, budgets, hardware="v100"))
    assert best is not None and best.figures["latency_ms"] > 0.11  # the budget binds
    result = design(tiny_space, budgets, hardware="v100", tolerance=0.0)
    assert result.score == pytest.approx(best.score, rel=1e-6)
    assert result.figures["latency_ms"] <= 0.12
    assert result.notes == []
    assert result.shadow_prices["latency_ms"]["per_unit"] > 0


@pytest.mark.parametrize("hardware", ["v100", "x86-avx2", "rpi4"])
@pytest.mark.parametrize("name", ["resnet-bottleneck-ratio", "mobilenet", "convnext"])
def test_roofline_posynomials_match_the_latency_model(name: str, hardware: str) -> None:
    space = get_space(name)
    fixed = {p.name: p.choices[0] for p in space.parameters
             if p.name in ("resolution", "se_ratio")}
    model = build_model(space, fixed)
    roofline = model_for(get_profile(hardware), "roofline")
    assert isinstance(roofline, RooflineModel)
    for batch, dtype in ((1, roofline.profile.precision), (8, roofline.profile.dtypes[0])):
        terms = {key: roofline_terms(part, roofline, batch, dtype)
                 for key, part in model.parts.items()}
        rng = np.random.default_rng(5)
        for _ in range(6):
            params = {**space.sample(rng), **fixed}
            want = roofline.predict(space.decode(params), batch, dtype)
            assert model_latency(model, params, terms, roofline.calibration) == \
                pytest.approx(want, rel=1e-9)


CALIBRATED = [name for name in list_profiles()
              if (profile := get_profile(name)).model is not None
              and profile.model.kind == "roofline" and profile.model.calibration]


def test_the_calibrated_profiles_cover_every_structure_of_the_roofline() -> None:
    """The next test is meaningful: the built-in calibrations use per-class overheads,
    per-group overheads, shape terms and overlapping overheads between them."""
    calibrations = [get_profile(name).model.calibration for name in CALIBRATED]
    for key in ("overhead_us.depthwise", "per_group_us", "shape.c_out", "overlap"):
        assert any(cal.get(key) for cal in calibrations), key
    assert any(not cal.get("overlap") for cal in calibrations)


@pytest.mark.parametrize("name", ["mobilenet", "resnet-bottleneck", "deepmad-mbconv"])
def test_roofline_posynomials_match_every_calibrated_profile(name: str) -> None:
    """The MP's latency posynomials carry each built-in calibration in full (per-class and
    per-group overheads, the shape factor, overlap, the network-level terms): at sampled
    networks they give the calibrated roofline's own prediction."""
    space = get_space(name)
    fixed = {p.name: p.choices[0] for p in space.parameters
             if p.name in ("resolution", "se_ratio")}
    model = build_model(space, fixed)
    for hardware in CALIBRATED:
        roofline = model_for(get_profile(hardware), "roofline")
        assert isinstance(roofline, RooflineModel) and roofline.calibration
        for batch in (1, 8):
            dtype = roofline.profile.precision
            terms = {key: roofline_terms(part, roofline, batch, dtype)
                     for key, part in model.parts.items()}
            verify_latency(space, model, roofline, terms, batch, dtype)
            rng = np.random.default_rng(3)
            for _ in range(4):
                params = {**space.sample(rng), **fixed}
                want = roofline.predict(space.decode(params), batch, dtype)
                got = model_latency(model, params, terms, roofline.calibration)
                assert got == pytest.approx(want, rel=1e-9), (hardware, batch, params)


def test_relaxed_posynomials_match_the_cost_model(tiny_space: SearchSpace) -> None:
    """The probed model evaluated at a grid point equals the exact counts."""
    model = build_model(tiny_space, {})
    params = {"stem.width": 16, "s1.width": 24, "s1.expansion": 0.5, "s2.width": 32,
              "s2.expansion": 1.0, "s1.kernel": 5, "s2.kernel": 3, "s1.depth": 3,
              "s2.depth": 2}
    exact = cost(tiny_space.decode(params))
    got = model_costs(model, params)
    for name in ("flops", "params", "activations"):
        assert got[name] == pytest.approx(getattr(exact, name), rel=1e-12)


@pytest.mark.parametrize("name", ["resnet-bottleneck-ratio", "resnet-basic", "mobilenet",
                                  "convnext", "deepmad-mbconv"])
def test_model_reproduces_the_cost_model_with_tied_widths(name: str) -> None:
    """At random points, and at points where a tie holds (a stride-1 stage's input width
    equals its own: no projection shortcut; an inverted residual's hidden width equals its
    input width: no expansion conv), the model's costs are the exact counts."""
    space = get_space(name)
    fixed = {p.name: p.choices[-1] for p in space.parameters
             if p.name in ("resolution", "se_ratio")}
    model = build_model(space, fixed)
    rng = np.random.default_rng(7)
    tied = 0
    for k in range(40):
        params = {**space.sample(rng), **fixed}
        if model.ties and k % 2:
            i, j = model.ties[k // 2 % len(model.ties)].pair
            value = min(model.grids[j][-1], max(model.grids[j][0], model.grids[i][-1]))
            if value in model.grids[i]:
                params[model.variables[i].name] = params[model.variables[j].name] = \
                    int(value)
                tied += 1
        exact = cost(space.decode(params))
        got = model_costs(model, params)
        for cost_name in ("flops", "params", "activations"):
            assert got[cost_name] == pytest.approx(getattr(exact, cost_name), rel=1e-12)
        assert got["peak_elements"] * 4 == pytest.approx(exact.peak_activation_bytes,
                                                         rel=1e-12)
    assert tied or not model.ties
    if name == "resnet-bottleneck-ratio":  # its stride-1 4th stage can repeat the 3rd width
        assert model.ties == [Tie(3, 0, (4, 6))]
    if name == "deepmad-mbconv":  # every block's hidden width can be its input width
        names = [(t.stage, t.block, *(model.variables[i].name for i in t.pair))
                 for t in model.ties]
        assert (3, 0, "s3.width", "s4.width") in names  # and stride-1 stage 4 its input
        assert (3, 0, "s3.width", "s4.hidden_width") in names
        assert (3, 1, "s4.width", "s4.hidden_width") in names
        assert (0, 0, "stem.width", "s1.hidden_width") in names
        assert len(names) == 11


def test_a_structural_branch_the_model_misses_is_refused() -> None:
    space = load_space(Path(__file__).with_name("inverted-expansion-one.yaml"))
    with pytest.raises(ModelingError, match="structural branch"):
        build_model(space, {})


def test_node_bounds_hold_for_every_design_in_the_node() -> None:
    """The relaxation over boxes around feasible designs (tied widths included) is never
    below the design's exact score, and equals it (up to the margin) on the point itself."""
    space = get_space("resnet-bottleneck-ratio")
    budgets = Budgets(flops=20e9, params=100e6, rho=0.6)
    rules = DesignRules(max_kernel_ratio=None, monotone_widths=False)
    problem = Problem(space, budgets, rules=rules)
    model = build_model(space, {})
    relax = HullRelaxation(model, budgets, DeepMAD(), rules)
    rng = np.random.default_rng(3)
    lo_all = np.log([grid(p)[0] for p in model.variables])
    hi_all = np.log([grid(p)[-1] for p in model.variables])
    checked = 0
    while checked < 12:
        params = space.sample(rng)
        if checked % 2:  # tie stage 4's input (stage 3's width) to its own
            params["s3.width"] = params["s4.width"] = max(int(params["s3.width"]), 128)
        ev = problem.evaluate(params)
        if not ev.feasible:
            continue
        checked += 1
        z = np.log([float(params[p.name]) for p in model.variables])
        depths = tuple((int(params[p.name]),) for p in model.depth_params)
        kernels = tuple((list(p.choices).index(params[p.name]),) for p in model.kernel_params)
        point = relax.solve(NodeBox(z, z, depths, kernels))
        assert point is not None
        assert point.value == pytest.approx(ev.score, rel=2e-5)
        assert point.value >= ev.score
        width = rng.uniform(0.0, 0.5, size=len(z))
        box = NodeBox(np.maximum(z - width, lo_all), np.minimum(z + width, hi_all),
                      tuple(tuple(range(max(1, d[0] - 2), d[0] + 3)) for d in depths),
                      tuple((0, 1) for _ in kernels))
        wide = relax.solve(box)
        assert wide is not None and wide.value >= ev.score


def test_result_serializes_and_reports_bindings(tiny_space: SearchSpace) -> None:
    result = design(tiny_space, Budgets(flops=2.0e6, params=20e3), tolerance=0.0)
    data = result.to_dict()
    for key in ("score", "upper_bound", "gap", "flops", "params", "rho", "spec", "seconds",
                "binding", "shadow_prices"):
        assert key in data
    assert set(result.binding) <= {"flops", "params"}
    for name in result.binding:
        assert result.figures[name] >= 0.99 * result.budgets.items()[name]


def test_bad_requests_are_input_errors(tiny_space: SearchSpace) -> None:
    with pytest.raises(InputError, match="smallest network of the space costs"):
        design(tiny_space, Budgets(flops=10.0))
    with pytest.raises(InputError, match="deepmad objective"):
        design(tiny_space, Budgets(flops=2e6), objective="zen")
    with pytest.raises(InputError, match="needs a hardware profile"):
        design(tiny_space, Budgets(latency_ms=2.0))



def test_stages_of_fixed_depth_one_and_rule_excluded_resolutions() -> None:
    # mobilenet: stages 1 and 7 have depth fixed at 1 (no repeated block), and at 128px
    # the last feature map (4) admits no kernel under kernel <= size / 1.5: that resolution
    # is left out instead of failing the whole design.
    result = design(get_space("mobilenet"), Budgets(flops=3e8), max_nodes=50)
    assert result.spec.resolution != 128
    assert cost(result.spec).flops <= 3e8
    assert result.upper_bound >= result.score > 0


def test_front_of_explored_designs(tiny_space: SearchSpace) -> None:
    """``front_of``: the feasible designs met on the way, none beaten on score and FLOPs."""
    budgets = Budgets(flops=2.0e6, params=20e3)
    result = design(tiny_space, budgets, tolerance=0.0, front_of="flops")
    problem = Problem(tiny_space, budgets)
    evaluated = [problem.evaluate(p) for p in result.front]
    assert len(evaluated) >= 2 and all(ev.feasible for ev in evaluated)
    flops = [ev.figures["flops"] for ev in evaluated]
    scores = [ev.score for ev in evaluated]
    assert flops == sorted(flops) and scores == sorted(scores)  # more FLOPs buy more score
    assert scores[-1] == pytest.approx(result.score)


def test_the_node_limit_bounds_the_work_and_gives_the_same_design_twice(
        tiny_space: SearchSpace) -> None:
    budgets = Budgets(flops=3.0e6, params=40e3, rho=0.25)
    first = design(tiny_space, budgets, tolerance=0.0, max_nodes=3)
    again = design(tiny_space, budgets, tolerance=0.0, max_nodes=3)
    assert first.status == "node_limit" and first.nodes <= 4  # a node's two children
    assert (first.params, first.score, first.upper_bound, first.nodes) == \
        (again.params, again.score, again.upper_bound, again.nodes)
    assert first.upper_bound >= first.score
    assert any("node limit" in note and f"{first.nodes} nodes" in note for note in first.notes)


def test_a_time_limit_that_cuts_the_search_says_so_with_the_node_count(
        tiny_space: SearchSpace) -> None:
    result = design(tiny_space, Budgets(flops=3.0e6, params=40e3, rho=0.25), tolerance=0.0,
                    time_limit=1e-9)
    assert result.status == "time_limit"
    assert any("time limit" in note and f"after {result.nodes} nodes" in note
               for note in result.notes)


@pytest.mark.parametrize("limits", [{"max_nodes": 0}, {"max_nodes": 2.5},
                                    {"time_limit": 0.0}])
def test_bad_limits_are_input_errors(tiny_space: SearchSpace, limits: dict) -> None:
    with pytest.raises(InputError, match=next(iter(limits))):
        design(tiny_space, Budgets(flops=2e6), **limits)


RATIO_CASES = [Budgets(flops=1.5e6), Budgets(params=25e3, rho=0.3),
               Budgets(flops=2.5e6, params=30e3)]


@pytest.mark.parametrize("budgets", RATIO_CASES, ids=lambda b: str(b.items()))
def test_exact_optimum_under_ratio_constraints(budgets: Budgets,
                                               brute_force: Callable) -> None:
    """Free bottleneck widths bounded by ratio constraints (linear in log space): the MP
    proves the brute-force optimum over the constrained space, and its design respects
    the constraints."""
    space = load_space(Path(__file__).with_name("tiny-ratio.yaml"))
    best = brute_force(Problem(space, budgets))
    assert best is not None
    result = design(space, budgets, tolerance=0.0)
    assert result.status == "optimal"
    assert result.score == pytest.approx(best.score, rel=1e-6)
    assert result.gap <= 3 * BOUND_MARGIN
    assert space.feasible(result.params)
    # the optimum of the unconstrained relaxation would break a ratio somewhere: the
    # constraints are in the model, not only checked on designs
    model = build_model(space, {})
    assert [(model.variables[i].name, model.variables[j].name) for i, j, *_ in model.ratios] \
        == [("s1.hidden_width", "s1.width"), ("s2.hidden_width", "s2.width")]


def test_ratio_constraints_on_other_parameters_are_refused(tmp_path: Path) -> None:
    text = Path(__file__).with_name("tiny-ratio.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("ratio: [s2.hidden_width, s2.width]",
                                "ratio: [s2.depth, s1.depth]"))
    with pytest.raises(ModelingError, match="ratio constraints between widths"):
        build_model(load_space(bad), {})


@pytest.mark.parametrize("name", list_spaces())
def test_every_registered_space_is_designed_with_a_gap_or_no_bound(name: str) -> None:
    """Every space in ``archdesign spaces`` runs through the designer: a certified gap
    where the MP models the space, an explicit "no bound" where it does not. (The kernel
    rule is off: the CIFAR-sized spaces end in 4x4 feature maps that cannot meet it.)"""
    space = get_space(name)
    budgets = Budgets(flops=cost(space.spec()).flops)
    result = design(space, budgets, rules=DesignRules(max_kernel_ratio=None), max_nodes=4,
                    fallback=True)
    assert result.figures["flops"] <= budgets.flops  # type: ignore[operator]
    assert result.score == pytest.approx(get_objective("deepmad").score(result.spec))
    if result.status == "no_bound":
        assert result.upper_bound is None and result.gap is None
        assert result.notes[0].startswith("no bound: ") and "not certified" in result.notes[0]
    else:
        assert result.upper_bound is not None and result.gap is not None
        assert result.upper_bound >= result.score and result.gap >= 0
    with_bound = {"convnext", "deepmad-mbconv", "mobilenet", "resnet-basic",
                  "resnet-bottleneck", "resnet-bottleneck-ratio", "nas-bench-macro",
                  "ofa-mbv3", "fbnet", "fbnet-cifar100", "regnet"}
    assert (result.status != "no_bound") == (name in with_bound)


def test_a_space_the_mp_cannot_model_is_refused_without_fallback(tmp_path: Path) -> None:
    """A RegNet space of any number of stages is none the designers model: without the
    fallback it is refused, a bad request."""
    text = Path(__file__).with_name("tiny-regnet.yaml").read_text()
    free = tmp_path / "free.yaml"
    free.write_text(text.replace("num_stages: 4\n", ""))
    with pytest.raises(ModelingError, match="models staged spaces"):
        design(load_space(free), Budgets(flops=3e8), max_nodes=4)
    with pytest.raises(InputError, match="staged spaces"):
        design(load_space(free), Budgets(flops=4e8))


def test_a_small_space_neither_program_models_is_enumerated(tmp_path: Path) -> None:
    """Choices shared by two blocks each are neither per stage nor per block, and their 72
    assignments are more than either program enumerates outside: a space this small is
    enumerated instead, the optimum certified with gap 0."""
    shared = tmp_path / "shared.yaml"
    shared.write_text("""
name: shared
family: staged
resolution: {choices: [32, 48], default: 48}
stem: {width: 16, kernel: 3, stride: 2}
head: {num_classes: 10, width: 128}
block: inverted_residual
parameters:
  k0: {choices: [3, 5, 7], default: 3}
  k1: {choices: [3, 5, 7], default: 3}
  e0: {choices: [3, 6], default: 6}
  e1: {choices: [3, 6], default: 6}
stages:
  - {width: 24, depth: 2, stride: 2,
     blocks: [{kernel: $k0, expansion: $e0}, {kernel: $k1, expansion: $e1}]}
  - {width: 40, depth: 2, stride: 2,
     blocks: [{kernel: $k0, expansion: $e1}, {kernel: $k1, expansion: $e0}]}
""")
    result = design(load_space(shared), Budgets(flops=4e6),
                    rules=DesignRules(max_kernel_ratio=None), fallback=True)
    assert result.gap == 0 and result.upper_bound == result.score
    assert result.notes[0].startswith("certified by exact enumeration of all 72 networks")
    assert "as per-block choices: 72 assignments" in result.notes[0]


def test_exact_optimum_under_a_calibrated_latency_budget(tiny_space: SearchSpace,
                                                        brute_force: Callable) -> None:
    """A profile calibrated on measured networks (rtx2080ti: fitted efficiencies, per-class
    kernel overheads that overlap the kernels, a per-network constant) is a roofline, so
    its latency is in the relaxation in full: the MP proves the brute-force optimum and
    says so. At batch 32 the widest kernels outrun their launch overhead, so the budget
    binds on widths as well as depths."""
    assert get_profile("rtx2080ti").validation["calibration"]
    budgets = Budgets(latency_ms=2.8, rho=0.3, batch=32)
    best = brute_force(Problem(tiny_space, budgets, hardware="rtx2080ti"))
    assert best is not None and best.figures["latency_ms"] > 2.7
    result = design(tiny_space, budgets, hardware="rtx2080ti", tolerance=0.0)
    assert result.score == pytest.approx(best.score, rel=1e-6)
    assert result.figures["latency_ms"] <= 2.8 and result.notes == []
    assert result.latency_certified is not None
    assert result.latency_certified.startswith("all of it: the calibrated (fitted on "
                                               "measured networks) roofline of rtx2080ti")
    # its per-class overheads overlap the kernels: a third term of each kernel's max
    assert "max(compute, memory, 34.6-163 µs per kernel)" in result.latency_certified
    assert result.to_dict()["latency_certified"] == result.latency_certified
    no_latency = design(tiny_space, Budgets(rho=0.3, batch=32), hardware="rtx2080ti",
                        tolerance=0.0)
    assert no_latency.latency_certified is None
    assert no_latency.figures["latency_ms"] > 2.8  # the budget binds
    assert no_latency.score > result.score


def test_a_sweep_models_checks_and_prices_latency_once_per_assignment(
        tiny_space: SearchSpace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Within a shared_models block (one MP seeding sweep) problems that differ in their
    budgets reuse each assignment's model, its roofline latency terms and the check of
    its relaxation's terms; another batch prices latency anew, and so does a problem
    outside the block."""
    checks: list[int] = []
    verify = HullRelaxation.verify_objective

    def counted(relax: HullRelaxation, space: SearchSpace, samples: int = 6) -> None:
        checks.append(id(relax))
        verify(relax, space, samples)

    monkeypatch.setattr(HullRelaxation, "verify_objective", counted)

    def solver(budgets: Budgets) -> _Solver:
        return _Solver(Problem(tiny_space, budgets, hardware="rtx2080ti"), 0.005, 10, None, {})

    with shared_models():
        first = solver(Budgets(latency_ms=2.8, rho=0.3, batch=32))
        again = solver(Budgets(latency_ms=3.5, flops=3e6, rho=0.3, batch=32))
        other = solver(Budgets(latency_ms=2.8, rho=0.3, batch=1))
    outside = solver(Budgets(latency_ms=2.8, rho=0.3, batch=32))
    combos = len(first.models)
    assert all(a is b for a, b in zip(again.models, first.models, strict=True))
    assert outside.models[0] is not first.models[0]
    for a, b in zip(first.relaxations, again.relaxations, strict=True):
        assert a.latency is not None and b.latency is not None
        assert b.latency[1] is a.latency[1]
        assert other.relaxations[0].latency[1] is not a.latency[1]  # type: ignore[index]
    # checked: first, again (it budgets FLOPs too), other (another batch: the same
    # costs budgeted, so not again), outside
    assert len(checks) == 3 * combos


@pytest.mark.parametrize("name", ["resnet-bottleneck", "deepmad-mbconv", "mobilenet"])
def test_node_problem_is_dpp_and_its_deepmad_terms_match_the_objective(name: str) -> None:
    """A node changes parameters only, so the program compiles once (DPP); and the
    relaxation's grouping, entropies and depth penalty reproduce the objective at points
    of the space (the designer checks this at run time too)."""
    space = get_space(name)
    fixed = {p.name: p.choices[0] for p in space.parameters
             if p.name in ("resolution", "se_ratio")}
    model = build_model(space, fixed)
    relax = HullRelaxation(model, Budgets(flops=4e9, params=30e6, rho=0.5), DeepMAD(),
                           DesignRules())
    assert relax.problem.is_dcp(dpp=True) and relax.problem.is_dpp()
    relax.verify_objective(space)
    rng = np.random.default_rng(11)
    for _ in range(5):
        params = {**space.sample(rng), **fixed}
        assert relax.point_score(params) == pytest.approx(
            DeepMAD().score(space.decode(params)), rel=1e-9)


def test_budgets_share_the_cone_rows_of_monomials_that_differ_by_a_constant() -> None:
    """At a fixed resolution a conv's FLOPs are its parameters times its output's size,
    and a live set's bytes are an output's: FLOPs and peak memory add no exponential-cone
    row to those of the params budget (each row a monomial over a group of options)."""
    model = build_model(get_space("deepmad-mbconv"), {"resolution": 224})

    def cone_rows(**limits: float) -> int:
        relax = HullRelaxation(model, Budgets(rho=0.5, **limits), DeepMAD(), DesignRules())
        rows = sum(c.args[0].shape[0] for c in relax.problem.constraints
                   if isinstance(c, cp.constraints.ExpCone))
        assert rows == len(relax.cone_rows.log_c)
        return rows

    assert cone_rows(flops=4.5e9) == 162
    assert cone_rows(peak_activation_bytes=3e7) == 129
    assert cone_rows(params=29e6) == 225
    assert cone_rows(flops=4.5e9, params=29e6, peak_activation_bytes=3e7) == 225


def test_the_relaxation_is_exact_at_decreasing_widths_and_at_expansion_free_blocks() -> None:
    """Without the monotone-width rule (the search's MP seeding) the relaxation's score at
    a point with decreasing stage widths is the objective's; where a block's hidden width
    equals its input width the block has no expansion conv, a tie of the model: its
    score and costs are the exact ones there too (they used to count the conv: 10734.007
    and 1,138,105,344 FLOPs)."""
    space = get_space("deepmad-mbconv")
    model = build_model(space, {"resolution": 224})
    relax = HullRelaxation(model, Budgets(flops=4.5e9, params=29e6, rho=0.5), DeepMAD(),
                           DesignRules(monotone_widths=False))
    base = {**space.defaults(), "resolution": 224}
    decreasing = {**base, "s2.width": 256, "s3.width": 128, "s4.width": 96, "s5.width": 512}
    assert DeepMAD().score(space.decode(decreasing)) == pytest.approx(10855.495, abs=1e-3)
    assert relax.point_score(decreasing) == pytest.approx(10855.495, abs=1e-3)
    tied = {**base, "s4.hidden_width": 256}  # = s4.width, the repeated blocks' input
    assert DeepMAD().score(space.decode(tied)) == pytest.approx(10183.954, abs=1e-3)
    assert relax.point_score(tied) == pytest.approx(10183.954, abs=1e-3)
    assert cost(space.decode(tied)).flops == 1_112_415_232
    assert relax.point_figures([tied])[1]["flops"][0] == pytest.approx(1_112_415_232, rel=1e-9)
    # the first block too: s4's hidden width = s3's width (its input), and with s4.width
    # = s3.width as well (no expansion conv and no projection: both ties of the block)
    for first in ({**base, "s4.hidden_width": 192}, {**base, "s4.hidden_width": 192,
                                                      "s4.width": 192, "s5.width": 512}):
        spec = space.decode(first)
        assert relax.point_score(first) == pytest.approx(DeepMAD().score(spec), rel=1e-9)
        assert relax.point_figures([first])[1]["flops"][0] == \
            pytest.approx(cost(spec).flops, rel=1e-9)


def test_a_relaxation_whose_deepmad_terms_differ_from_the_objective_is_refused() -> None:
    space = get_space("resnet-bottleneck-ratio")
    relax = HullRelaxation(build_model(space, {}), Budgets(flops=4e9), DeepMAD(),
                           DesignRules())
    vec, const = relax.groups[0]["f"]
    relax.groups[0]["f"] = (vec, const + math.log(4))  # the first group's resolution doubled
    with pytest.raises(ModelingError, match="DeepMAD score"):
        relax.verify_objective(space)


def test_a_node_that_ties_a_stage_to_its_input_width_keeps_its_repeated_blocks() -> None:
    """Deciding that a stride-1 stage's input width equals its own (no projection) picks
    its first block only: the stage's repeated blocks stay, so the bound of the node that
    holds one such design is that design's score (it used to be empty, and the designs
    with s3.width == s4.width were cut from the bound)."""
    space = get_space("resnet-bottleneck-ratio")
    budgets = Budgets(flops=4.13e9, params=25.55e6, rho=0.3)
    params = {"s1.width": 176, "s1.expansion": 0.125, "s2.width": 496, "s2.expansion": 0.125,
              "s3.width": 760, "s3.expansion": 0.125, "s4.width": 760, "s4.expansion": 0.125,
              "s5.width": 1608, "s5.expansion": 0.125, "stem.width": 48, "s1.depth": 2,
              "s1.kernel": 5, "s2.depth": 9, "s2.kernel": 5, "s3.depth": 15, "s3.kernel": 5,
              "s4.depth": 14, "s4.kernel": 5, "s5.depth": 10, "s5.kernel": 3}
    solver = _Solver(Problem(space, budgets), 0.005, 10, None, {})
    index = tuple(solver.grid_index[i][float(params[p.name])]
                  for i, p in enumerate(solver.sizes))
    node = Node(0, index, index, tuple((int(params[p.name]),) for p in solver.depth_params),
                tuple((param_values(p).index(params[p.name]),) for p in solver.kernel_params),
                ((3, True),))
    assert solver.tighten(node) == node
    sol = solver.relaxations[0].solve(solver.box(node))
    assert sol is not None
    exact = DeepMAD().score(space.decode(params))
    assert exact == pytest.approx(47226.4705, abs=1e-3)
    assert sol.value == pytest.approx(exact, rel=1e-4)


def test_a_node_that_holds_one_expansion_free_design_bounds_at_its_score() -> None:
    """Deciding the ties of inverted residuals whose hidden width equals their input width
    (no expansion conv) picks the tied variants of those blocks: the bound of the node
    that holds one such design is that design's score (the relaxation used to count the
    expansion conv there, and bounded such designs above their score)."""
    space = get_space("deepmad-mbconv")
    budgets = Budgets(flops=4.5e9, params=29e6, rho=0.5)
    params = {**space.defaults(), "resolution": 224, "s1.width": 64, "s1.depth": 2,
              "s2.width": 128, "s2.hidden_width": 64,  # = s1.width, its first block's input
              "s2.depth": 2, "s3.width": 256, "s3.hidden_width": 1024, "s3.depth": 2,
              "s4.width": 384, "s4.hidden_width": 384,  # = s4.width, its repeats' input
              "s5.width": 768, "s5.hidden_width": 3072, "s5.depth": 2}
    solver = _Solver(Problem(space, budgets), 0.005, 10, None, {"resolution": 224})
    model = solver.models[0]
    held = [Tie(1, 0, (0, 3)), Tie(3, 1, (6, 7))]
    assert all(tie in model.ties for tie in held)
    index = tuple(solver.grid_index[i][float(params[p.name])]
                  for i, p in enumerate(solver.sizes))
    node = Node(0, index, index, tuple((int(params[p.name]),) for p in solver.depth_params),
                tuple((param_values(p).index(params[p.name]),) for p in solver.kernel_params),
                tuple((tie, tie in held) for tie in model.ties))
    assert solver.tighten(node) == node
    relax = solver.relaxations[0]
    sol = relax.solve(solver.box(node))
    assert sol is not None
    exact = DeepMAD().score(space.decode(params))
    assert exact == pytest.approx(7249.242, abs=1e-3)
    assert relax.point_score(params) == pytest.approx(exact, rel=1e-9)
    assert sol.value == pytest.approx(exact, rel=1e-4)
    assert sol.value >= exact
    # the tied variants carry the weight: one first block of stage 2, stage 4's repeats
    assert relax.tied_weight(sol.weights) == pytest.approx(
        {tie: float(tie in held) for tie in model.ties}, abs=1e-6)
    # the same box with the ties left open is exact as well (the box pins the widths)
    open_node = replace(node, ties=())
    assert relax.solve(solver.box(open_node)).value == pytest.approx(exact, rel=1e-4)


def test_a_solver_error_is_not_read_as_the_previous_solve(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A solve that raises leaves the problem holding the previous solve's status and
    value: the node must not take them as its own bound (on deepmad89m such a stale
    value cut a design scoring 39,900 with a 'bound' of 39,596)."""
    x = cp.Variable()
    problem = cp.Problem(cp.Minimize(x), [x >= 1])
    assert solve_clarabel(problem) == "optimal" and problem.value == pytest.approx(1.0)

    def fail(*args: object, **kwargs: object) -> None:
        raise cp.error.SolverError("failed")

    monkeypatch.setattr(problem, "solve", fail)
    assert problem.status == "optimal"  # what a caller reading the problem would see
    assert solve_clarabel(problem) == "solver_error"
    assert solve_clarabel(problem, retry=False) == "solver_error"
