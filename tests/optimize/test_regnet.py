"""The RegNet designer: its list of networks against RegNet's own quantization, its block
model against the exact evaluation, its optimum against brute force and published
RegNets."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from archdesign.cost import cost
from archdesign.errors import InputError
from archdesign.objectives import effectiveness, get_objective
from archdesign.optimize import Budgets, Problem, design
from archdesign.optimize.regnet import (
    ComboModel,
    _shared_memo,
    depth_penalties,
    network_params,
    networks,
)
from archdesign.spaces import RegNetSpace, generate_regnet, get_space, load_space
from archdesign.zoo import get_arch

TINY = Path(__file__).with_name("tiny-regnet.yaml")
COMBO = {"group_w": 8, "bottleneck": 1.0, "se": 0.0, "resolution": 224}


@pytest.fixture(scope="module")
def tiny() -> RegNetSpace:
    space = load_space(TINY)
    assert isinstance(space, RegNetSpace)
    return space


def _listed(space: RegNetSpace, held: dict) -> set[tuple]:
    nets = networks(space, held)
    return set(zip(nets.depth.tolist(), map(tuple, nets.widths.tolist()),
                   map(tuple, nets.depths.tolist()), strict=True))


def _decodes_to_itself(space: RegNetSpace, held: dict) -> int:
    nets = networks(space, held)
    for i in range(len(nets)):
        widths, depths = generate_regnet(float(nets.wa[i]), int(nets.w0[i]),
                                         float(nets.wm[i]), int(nets.depth[i]), space.quantum)
        assert (widths, depths) == (nets.widths[i].tolist(), nets.depths[i].tolist()), i
    return len(nets)


@pytest.mark.parametrize("held", [{}, {"wa": 24.0}, {"wm": 2.2}, {"depth": 7, "w0": 8}])
def test_every_listed_network_is_what_its_point_decodes_to(tiny: RegNetSpace,
                                                           held: dict) -> None:
    assert _decodes_to_itself(tiny, held) > 0
    nets = networks(tiny, held)
    for name, value in held.items():
        assert (getattr(nets, name) == value).all()


@pytest.mark.parametrize("held", [{}, {"wa": 24.0}, {"wm": 2.2}])
def test_every_network_the_space_samples_is_listed(tiny: RegNetSpace, held: dict) -> None:
    listed = _listed(tiny, held)
    rng = np.random.default_rng(3)
    seen = 0
    for _ in range(6000):
        p = {**tiny.sample(rng), **held}
        widths, depths = generate_regnet(float(p["wa"]), int(p["w0"]), float(p["wm"]),
                                         int(p["depth"]), tiny.quantum)
        if len(widths) != 4:  # not a network of the space: it has four stages
            continue
        seen += 1
        assert (int(p["depth"]), tuple(widths), tuple(depths)) in listed, p
    assert seen > 1000


def test_the_list_is_complete_where_levels_merge_and_ramps_jump() -> None:
    """w0 = 8: levels 1 and 2 can round to one width (a stage of two levels); a steep wa
    jumps over levels after block 0. A 400 x 400 grid of (wa, wm) finds nothing unlisted
    (it finds 714 of the 1,066: the others' cells fall between its points)."""
    space = get_space("regnet")
    assert isinstance(space, RegNetSpace)
    held = {"depth": 20, "w0": 8}
    listed = _listed(space, held)
    assert _decodes_to_itself(space, held) == len(listed) == 1066
    found = set()
    for wa in np.geomspace(8.0, 256.0, 400):
        for wm in np.linspace(1.5, 3.0, 400):
            widths, depths = generate_regnet(float(wa), 8, float(wm), 20)
            if len(widths) == 4:
                found.add((20, tuple(widths), tuple(depths)))
    assert found <= listed and len(found) == 714


def test_published_regnets_are_in_the_list() -> None:
    space = get_space("regnet")
    assert isinstance(space, RegNetSpace)
    for depth, w0, wa, wm in ((16, 48, 36.97, 2.24), (13, 24, 36.44, 2.49)):  # X-600MF, -200MF
        widths, depths = generate_regnet(wa, w0, wm, depth)
        assert (depth, tuple(widths), tuple(depths)) in _listed(space, {"depth": depth,
                                                                         "w0": w0})


@pytest.mark.parametrize(("hardware", "batch"), [(None, 1), ("rtx2080ti", 32), ("pixel3", 1)])
def test_the_block_model_gives_the_exact_figures(tiny: RegNetSpace, hardware: str | None,
                                                 batch: int) -> None:
    problem = Problem(tiny, Budgets(flops=1e9, params=1e8, activations=1e9,
                                    peak_activation_bytes=1e10, rho=10.0,
                                    latency_ms=1e4 if hardware else None, batch=batch),
                      hardware=hardware)
    objective = get_objective("deepmad")
    shared = _shared_memo(tiny, ())
    rng = np.random.default_rng(0)
    for combo in ({**COMBO}, {**COMBO, "group_w": 16, "se": 0.25}):
        model = ComboModel(problem, objective, shared, combo,
                           tiny.decode(network_params(shared.nets, 0, combo)),
                           depth_penalties(objective, shared))
        rows = rng.choice(len(shared.nets), 25, replace=False)
        names = (*problem.limits, "score")
        got = model.figures(rows, names)
        for i, row in enumerate(rows.tolist()):
            spec = tiny.decode(network_params(shared.nets, row, combo))
            exact = {**problem.figures(spec), "score": objective.score(spec)}
            for name in names:
                assert got[name][i] == pytest.approx(exact[name], rel=1e-12), (name, row)


@pytest.mark.parametrize(("budgets", "hardware"), [
    (Budgets(flops=1.0e8, params=1.5e6, rho=0.5), None),
    (Budgets(params=1.0e6, peak_activation_bytes=3e6), None),
    (Budgets(flops=2.0e8, latency_ms=9.0, batch=32), "rtx2080ti"),
])
def test_the_design_is_the_brute_force_optimum(tiny: RegNetSpace, budgets: Budgets,
                                               hardware: str | None) -> None:
    held = {"depth": 6, "group_w": 8, "se": 0.0}
    result = design(tiny, budgets, hardware=hardware, fixed=held)
    problem = Problem(tiny, budgets, hardware=hardware)
    nets = networks(tiny, {"depth": 6})
    best = max((ev for ev in (problem.evaluate(network_params(nets, i, {**COMBO, **held}))
                              for i in range(len(nets))) if ev.feasible),
               key=lambda ev: ev.score)
    assert result.status == "optimal" and result.gap == 0.0
    assert result.upper_bound == result.score == best.score
    assert result.spec.stages == best.spec.stages
    assert "certified by exact enumeration" in result.notes[0]
    if hardware:
        assert result.latency_certified is not None
        assert result.latency_certified.startswith("all of it")


def test_two_designs_of_the_same_problem_are_identical(tiny: RegNetSpace) -> None:
    budgets = Budgets(flops=1.2e8, params=2e6, rho=0.5)
    first, again = (design(tiny, budgets, front_of="flops").to_dict() for _ in range(2))
    for data in (first, again):
        del data["seconds"]
    assert first == again


def test_the_front_holds_the_optimum_of_every_lower_budget(tiny: RegNetSpace) -> None:
    """The front (score against FLOPs) of one design contains the design at any lower FLOPs
    budget: one enumeration seeds a whole sweep."""
    top = design(tiny, Budgets(flops=1.5e8, rho=0.5), front_of="flops")
    front = [(cost(tiny.decode(p)).flops, get_objective("deepmad").score(tiny.decode(p)))
             for p in top.front]
    assert front == sorted(front) and all(a[1] < b[1] for a, b in itertools.pairwise(front))
    for level in (4e7, 8e7, 1.2e8):
        lower = design(tiny, Budgets(flops=level, rho=0.5))
        assert max(s for f, s in front if f <= level) == lower.score


def test_a_time_limit_that_cuts_the_enumeration_says_so(tiny: RegNetSpace) -> None:
    result = design(tiny, Budgets(flops=1e8), time_limit=1e-9)
    assert result.status == "time_limit" and result.upper_bound is None and result.gap is None
    assert "stopped the enumeration after" in result.notes[0]
    assert result.figures["flops"] <= 1e8


def test_budgets_no_network_meets_are_refused(tiny: RegNetSpace) -> None:
    with pytest.raises(InputError, match="no network of space 'tiny-regnet' fits"):
        design(tiny, Budgets(flops=1e6))


def test_the_registered_space_beats_the_published_regnet_in_its_own_budgets() -> None:
    """RegNetX-600MF is a network of the space: the certified optimum within its FLOPs,
    params and ρ scores at least as high, and is certified over all 6.5 million
    (depth, w0, wa, wm) networks and 102 assignments of the other parameters."""
    published = get_arch("regnetx_600mf")
    c = cost(published)
    budgets = Budgets(flops=c.flops, params=c.params, rho=effectiveness(published))
    result = design(get_space("regnet"), budgets)
    assert result.status == "optimal" and result.gap == 0.0
    assert result.score >= get_objective("deepmad").score(published)
    assert result.figures["flops"] <= c.flops and result.figures["params"] <= c.params
    assert "6,490,908 (depth, w0, wa, wm) networks x 102" in result.notes[0]
