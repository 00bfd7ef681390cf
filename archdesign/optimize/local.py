"""Local search over a space with exact evaluation: the MP's incumbents, and its designs
where no bound is available.

Steepest ascent over single moves (grid steps of every parameter, or the longer moves an
optimizer adds: any option of a block) and, asked for, paired grid steps, each candidate
recounted exactly by :meth:`Problem.evaluate`; infeasible candidates are
ranked by how far they exceed the budgets, so a search can start outside them. Every
evaluation is cached: the same start always ends at the same point. Where an optimizer
bounds the candidates' merits with an exact model cheaper than a recount
(:meth:`LocalSearch.merit_bounds`), a step recounts them best bound first and passes over
the rest once its best reaches their bounds: it takes the same steps, with a few recounts
instead of one per candidate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from archdesign.optimize.posynomial import param_values
from archdesign.optimize.problem import Evaluation, Problem
from archdesign.spaces import Parameter, Value

logger = logging.getLogger(__name__)


class LocalSearch:
    """Exact evaluations (cached), the best feasible one, and local search from a start."""

    def __init__(self, problem: Problem, fixed: dict[str, Value]) -> None:
        self.problem = problem
        self.fixed = fixed  # parameters no step changes
        self.cache: dict[tuple[Any, ...], Evaluation] = {}
        self.searched: set[tuple[Any, ...]] = set()  # local-search starts already run
        self.incumbent: Evaluation | None = None
        # whether merit_bounds may pass over candidates (off where every evaluated design
        # is wanted, for a front: then each candidate is recounted)
        self.screen = True

    def step(self, params: dict[str, Value], moved: str) -> dict[str, Value] | None:
        """The candidate a grid step of ``moved`` gives (None: the space rejects it); an
        optimizer that knows the space's constraints repairs the step here."""
        return params if self.problem.space.feasible(params) else None

    def merit_bounds(self, cands: list[dict[str, Value]]
                     ) -> list[tuple[int, float]] | None:
        """An upper bound on the merit (:meth:`_merit`) of each candidate, so a step may
        pass over the candidates that cannot beat its best without recounting them (None
        here: an optimizer with an exact model of the score and costs that is cheaper than
        a recount gives them, :func:`figure_merit_bounds`)."""
        return None

    def moves(self, params: dict[str, Value], fixed_names: set[str]
              ) -> list[tuple[str, dict[str, Value]]]:
        """(moved parameter, candidate) for every single move of a steepest-ascent step: a
        grid step of one parameter either way here; an optimizer that knows which
        parameters choose one block together moves them to any of the block's options."""
        return self._neighbors(params, fixed_names)

    def evaluate(self, params: dict[str, Value]) -> Evaluation:
        key = tuple(sorted(params.items()))
        hit = self.cache.get(key)
        if hit is None:
            hit = self.problem.evaluate(params)
            self.cache[key] = hit
            if hit.feasible and (self.incumbent is None or hit.score > self.incumbent.score):
                self.incumbent = hit
                logger.debug("incumbent %.3f", hit.score)
        return hit

    def front(self, figure: str) -> list[dict[str, Value]]:
        """Feasible evaluated designs that no other beats on both score and ``figure``,
        by increasing ``figure``."""
        feasible = sorted((ev for ev in self.cache.values() if ev.feasible),
                          key=lambda ev: (ev.figures[figure], -ev.score))
        out, best = [], -math.inf
        for ev in feasible:
            if ev.score > best:
                out.append(dict(ev.params))
                best = ev.score
        return out

    def _merit(self, ev: Evaluation) -> tuple[int, float]:
        if ev.feasible:
            return (1, ev.score)
        excess = sum(max(0.0, ev.usage[k] / v - 1) for k, v in self.problem.limits.items())
        return (0, -excess - len(ev.violations))

    def _neighbors(self, params: dict[str, Value], fixed_names: set[str],
                   direction: int = 0, skip: str | None = None
                   ) -> list[tuple[str, dict[str, Value]]]:
        """(moved parameter, candidate) for every step of one parameter: both ways, or
        only up (``direction`` 1) or down (-1) its values; ``skip``: a parameter left."""
        out = []
        for p in self.problem.space.parameters:
            if p.name in fixed_names or p.name == skip:
                continue
            down, up = _steps(p, params[p.name])
            for value, way in ((down, -1), (up, 1)):
                if value is not None and direction in (0, way):
                    cand = self.step({**params, p.name: value}, p.name)
                    if cand is not None:
                        out.append((p.name, cand))
        return out

    def local_search(self, params: dict[str, Value], max_steps: int = 60,
                     pairs: bool = False) -> Evaluation:
        """Steepest ascent over single (and, with ``pairs``, paired) grid steps, with exact
        figures throughout."""
        fixed_names = set(self.fixed)
        current = self.evaluate(params)
        start = (tuple(sorted(params.items())), max_steps, pairs)
        if start in self.searched:  # deterministic: the same start ends at the same point
            return current
        self.searched.add(start)
        for _ in range(max_steps):
            best, best_merit = self._best_of(
                [cand for _, cand in self.moves(current.params, fixed_names)],
                self._merit(current))
            if best is None and current.feasible and pairs:
                # trade: one parameter up, another down (moves along the budget surface)
                best, best_merit = self._best_of(
                    [pair for moved, cand in self._neighbors(current.params, fixed_names, 1)
                     for _, pair in self._neighbors(cand, fixed_names, -1, moved)],
                    best_merit)
            if best is None:
                break
            current = best
        return current

    def _best_of(self, cands: list[dict[str, Value]], best_merit: tuple[int, float]
                 ) -> tuple[Evaluation | None, tuple[int, float]]:
        """The first best of ``cands`` if its merit beats ``best_merit`` (else None), and
        the best merit: recounted in the order of their merit bounds (stable: the first of
        equals), stopping at the first bound the best so far reaches."""
        best = None
        bounds = self.merit_bounds(cands)
        order = range(len(cands)) if bounds is None else \
            sorted(range(len(cands)), key=lambda i: bounds[i], reverse=True)
        for i in order:
            if bounds is not None and bounds[i] <= best_merit:
                break
            ev = self.evaluate(cands[i])
            if self._merit(ev) > best_merit:
                best, best_merit = ev, self._merit(ev)
        return best, best_merit


def by_group(cands: list[dict[str, Value]], group_of: Callable[[dict[str, Value]], int],
             bounds_of: Callable[[int, list[dict[str, Value]]], list[tuple[int, float]]]
             ) -> list[tuple[int, float]]:
    """Merit bounds of candidates from a model per group (an optimizer's models are one per
    assignment of the parameters it enumerates): ``bounds_of(group, its candidates)``."""
    out: list[tuple[int, float]] = [(0, 0.0)] * len(cands)
    groups: dict[int, list[int]] = {}
    for i, cand in enumerate(cands):
        groups.setdefault(group_of(cand), []).append(i)
    for group, idx in groups.items():
        for i, bound in zip(idx, bounds_of(group, [cands[i] for i in idx]), strict=True):
            out[i] = bound
    return out


def figure_merit_bounds(score: np.ndarray, over: np.ndarray, margin: float,
                        ruled: np.ndarray | None = None) -> list[tuple[int, float]]:
    """Bounds on the merit (:meth:`LocalSearch._merit`) of candidates from exact model
    figures: ``score`` per candidate and ``over[b, i]``, candidate i's cost over budget b
    (figure / limit) for the budgets the model has, both exact to ``margin``
    (relative); ``ruled``: candidates that break a design rule. A candidate over a
    budget is infeasible, with at least its excess over those budgets and one
    violation per budget broken; one that breaks a rule has a violation; any other may
    be feasible, with at most its score."""
    broken = (over > 1 + margin).sum(axis=0)
    excess = np.maximum(0.0, (1 - margin) * over - 1).sum(axis=0)
    return [(0, -float(excess[i]) - int(broken[i])) if broken[i]
            else (0, -1.0) if ruled is not None and ruled[i]
            else (1, float(score[i]) + margin * max(1.0, abs(float(score[i]))))
            for i in range(len(score))]


# A continuous parameter (RegNet's wa, wm) steps by this fraction: of its value when it is
# log-scaled, of its range otherwise.
CONTINUOUS_STEP = 0.05


def _steps(p: Parameter, value: Value) -> tuple[Value | None, Value | None]:
    """The values one step down and up from ``value`` (None past an end): its grid
    neighbours, or for a continuous parameter ``CONTINUOUS_STEP`` either way (within its
    range, to 6 significant digits, so the same start always takes the same steps)."""
    if not math.isinf(p.count):
        values = param_values(p)
        i = values.index(value)
        return (values[i - 1] if i > 0 else None,
                values[i + 1] if i + 1 < len(values) else None)
    assert p.low is not None and p.high is not None
    v = float(value)
    moved = (v / (1 + CONTINUOUS_STEP), v * (1 + CONTINUOUS_STEP)) if p.log else \
        (v - CONTINUOUS_STEP * (p.high - p.low), v + CONTINUOUS_STEP * (p.high - p.low))
    down, up = (float(f"{min(max(m, p.low), p.high):.6g}") for m in moved)
    return (down if down < v else None, up if up > v else None)
