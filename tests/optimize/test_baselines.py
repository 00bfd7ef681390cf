"""Baselines: feasible, reproducible, never better than the exact optimum."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from archdesign.optimize import Budgets, Problem
from archdesign.optimize.baselines import evolutionary, optuna_search
from archdesign.spaces import SearchSpace, load_space

BUDGETS = Budgets(flops=2.0e6, params=20e3, rho=0.3)


def test_evolutionary_is_seeded_and_feasible(tiny_space: SearchSpace,
                                            brute_force: Callable) -> None:
    problem = Problem(tiny_space, BUDGETS)
    optimum = brute_force(problem)
    a = evolutionary(problem, population=16, iterations=400, seed=3)
    b = evolutionary(problem, population=16, iterations=400, seed=3)
    assert a.best is not None and a.best.feasible
    assert a.best.params == b.best.params  # type: ignore[union-attr]
    assert a.score <= optimum.score + 1e-9


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_optuna_respects_constraints(tiny_space: SearchSpace, brute_force: Callable,
                                     sampler: str) -> None:
    problem = Problem(tiny_space, BUDGETS)
    optimum = brute_force(problem)
    result = optuna_search(problem, sampler, trials=60, seed=0)
    assert result.evaluations == 60
    if result.best is not None:
        assert result.best.feasible
        assert result.score <= optimum.score + 1e-9


def test_baselines_keep_the_space_constraints_and_fixed_parameters(
        brute_force: Callable) -> None:
    space = load_space(Path(__file__).with_name("tiny-ratio.yaml"))
    problem = Problem(space, Budgets(flops=2.5e6, params=30e3))
    outside = {**space.defaults(), "s1.width": 32, "s1.hidden_width": 8}  # 8/32 < 0.3
    ev = problem.evaluate(outside)
    assert not ev.feasible
    assert ev.broken == ("constraint 0.3 <= s1.hidden_width / s1.width <= 1",)
    optimum = brute_force(problem)
    held = {"s2.kernel": 3}
    for result in (evolutionary(problem, population=16, iterations=300, seed=1, fixed=held),
                   optuna_search(problem, "tpe", trials=40, seed=1, fixed=held)):
        assert result.best is not None and result.best.feasible
        assert space.feasible(result.best.params) and result.best.params["s2.kernel"] == 3
        assert result.score <= optimum.score + 1e-9
