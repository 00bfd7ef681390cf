"""Baselines: feasible, reproducible, never better than the exact optimum."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from archdesign.optimize import Budgets, Problem
from archdesign.optimize.baselines import evolutionary, optuna_search
from archdesign.spaces import SearchSpace

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
