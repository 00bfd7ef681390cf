"""Baselines the MP designer is measured against (for comparison only).

- :func:`evolutionary`: the DeepMAD reference search: a population of feasible networks,
  each step mutates a random member (width, depth, kernel or expansion of one stage) and
  the child replaces the worst member if it is better; over-budget children are rejected.
- :func:`optuna_search`: Optuna's TPE or NSGA-II sampler over the space's parameters, the
  budgets and design rules passed as ``constraints_func`` (feasible iff all <= 0).

Both evaluate candidates with :meth:`Problem.evaluate` (exact figures), are seeded, and
stop after ``iterations`` evaluations or ``time_limit`` seconds.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from archdesign.optimize.posynomial import param_values
from archdesign.optimize.problem import Evaluation, Problem
from archdesign.spaces import Parameter, Value

logger = logging.getLogger(__name__)


@dataclass
class BaselineResult:
    name: str
    best: Evaluation | None
    evaluations: int
    seconds: float

    @property
    def score(self) -> float:
        return self.best.score if self.best is not None else -math.inf

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "evaluations": self.evaluations,
                "seconds": self.seconds,
                "params": self.best.params if self.best else None,
                "figures": self.best.figures if self.best else None}


def _mutate(params: dict[str, Value], space_params: list[Parameter],
            rng: np.random.Generator) -> dict[str, Value]:
    child = dict(params)
    for _ in range(int(rng.integers(1, 3))):
        p = space_params[int(rng.integers(len(space_params)))]
        values = param_values(p)
        if len(values) < 2:
            continue
        if p.kind == "categorical" and not all(isinstance(v, (int, float)) for v in values):
            child[p.name] = values[int(rng.integers(len(values)))]
            continue
        i = values.index(child[p.name])
        step = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
        child[p.name] = values[min(max(i + step, 0), len(values) - 1)]
    return child


def _violation(problem: Problem, ev: Evaluation) -> float:
    limits = problem.budgets.items()
    return (sum(max(0.0, ev.usage[n] / limits[n] - 1) for n in limits)
            + len(problem.rules.violations(ev.spec)) + len(ev.broken))


def _free(problem: Problem, fixed: dict[str, Value]) -> list[Parameter]:
    """The parameters a baseline varies (those not held ``fixed``)."""
    for name in fixed:
        problem.space.parameter(name)  # an unknown name is an InputError
    return [p for p in problem.space.parameters if p.name not in fixed]


def _feasible_start(problem: Problem, rng: np.random.Generator, params: list[Parameter],
                    fixed: dict[str, Value],
                    tries: int = 20_000) -> tuple[Evaluation | None, int]:
    """A feasible network to start from: mutate the space's defaults, keeping any child that
    violates the budgets less (the reference starts from a small hand-made network)."""
    current = problem.evaluate({**problem.space.defaults(), **fixed})
    evaluations = 1
    while not current.feasible and evaluations < tries:
        child = problem.evaluate(_mutate(current.params, params, rng))
        evaluations += 1
        if _violation(problem, child) <= _violation(problem, current):
            current = child
    return (current if current.feasible else None), evaluations


def evolutionary(problem: Problem, population: int = 256, iterations: int = 500_000,
                 time_limit: float | None = None, seed: int = 0,
                 fixed: dict[str, Value] | None = None) -> BaselineResult:
    """The reference-style evolutionary search (rejection of over-budget children);
    ``fixed``: parameters held at given values (e.g. resolution)."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    held = dict(fixed or {})
    params = _free(problem, held)
    members: list[Evaluation] = []
    first, evaluations = _feasible_start(problem, rng, params, held)
    if first is not None:
        members.append(first)
    else:
        return BaselineResult("evolutionary", None, evaluations, time.perf_counter() - start)
    seen = {tuple(sorted(m.params.items())) for m in members}
    while evaluations < iterations:
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
        parent = members[int(rng.integers(len(members)))]
        child_params = _mutate(parent.params, params, rng)
        key = tuple(sorted(child_params.items()))
        if key in seen:
            continue
        seen.add(key)
        child = problem.evaluate(child_params)
        evaluations += 1
        if not child.feasible:
            continue
        if len(members) < population:
            members.append(child)
            continue
        worst = min(range(len(members)), key=lambda i: members[i].score)
        if child.score > members[worst].score:
            members[worst] = child
    best = max(members, key=lambda m: m.score)
    return BaselineResult("evolutionary", best, evaluations, time.perf_counter() - start)


def optuna_search(problem: Problem, sampler: str = "tpe", trials: int = 100_000,
                  time_limit: float | None = None, seed: int = 0,
                  fixed: dict[str, Value] | None = None) -> BaselineResult:
    """Optuna over the space's parameters with the budgets (and the space's ratio
    constraints) as constraints; ``fixed``: parameters held at given values."""
    import optuna

    held = dict(fixed or {})
    free = _free(problem, held)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = list(problem.budgets.items())
    # Optuna 5's constraint API: Trial.set_constraint (constraints_func is deprecated)
    if sampler == "tpe":
        chosen: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(seed=seed)
    elif sampler == "nsga2":
        chosen = optuna.samplers.NSGAIISampler(seed=seed)
    else:
        raise ValueError(f"sampler: {sampler!r} is not one of ['tpe', 'nsga2']")
    study = optuna.create_study(direction="maximize", sampler=chosen)
    best: list[Evaluation] = []
    start = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        params: dict[str, Value] = dict(held)
        for p in free:
            values = param_values(p)
            params[p.name] = values[trial.suggest_int(p.name, 0, len(values) - 1)] \
                if len(values) > 1 else values[0]
        ev = problem.evaluate(params)
        limits = problem.budgets.items()
        for n in names:
            trial.set_constraint(n, ev.usage[n] / limits[n] - 1)
        trial.set_constraint("design_rules", float(len(problem.rules.violations(ev.spec))))
        trial.set_constraint("space_constraints", float(len(ev.broken)))
        if ev.feasible and (not best or ev.score > best[0].score):
            best[:] = [ev]
        return ev.score

    study.optimize(objective, n_trials=trials, timeout=time_limit)
    return BaselineResult(f"optuna-{sampler}", best[0] if best else None, len(study.trials),
                          time.perf_counter() - start)
