from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from archdesign.optimize import Evaluation, Problem
from archdesign.optimize.posynomial import grid, typed
from archdesign.spaces import SearchSpace, load_space

TINY = Path(__file__).with_name("tiny-bottleneck.yaml")


@pytest.fixture(scope="session")
def tiny_space() -> SearchSpace:
    return load_space(TINY)


@pytest.fixture(scope="session")
def brute_force() -> Callable[[Problem], Evaluation | None]:
    return _brute_force


def _brute_force(problem: Problem) -> Evaluation | None:
    """The best feasible network of the space, by enumerating every one."""
    names, values = [], []
    for p in problem.space.parameters:
        names.append(p.name)
        values.append(list(p.choices) if p.kind == "categorical"
                      else [typed(p, v) for v in grid(p)])
    best = None
    for combo in itertools.product(*values):
        params = dict(zip(names, combo, strict=True))
        if not problem.space.feasible(params):  # outside the space's ratio constraints
            continue
        ev = problem.evaluate(params)
        if ev.feasible and (best is None or ev.score > best.score):
            best = ev
    return best
