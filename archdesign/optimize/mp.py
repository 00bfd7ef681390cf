"""The DeepMAD mathematical program, solved by branch and bound over cvxpy relaxations.

Maximize the DeepMAD score over a staged space subject to budgets (FLOPs, params,
activations, peak activation memory, ρ, roofline latency, calibrated or not; a measured
latency model is enforced exactly on every design but is not in the relaxation), the
space's ratio constraints and the design rules. Variables: every width and expansion
(grids), every depth and kernel. The package, in reading order:

- :mod:`~archdesign.optimize.posynomial`: the space's costs, entropies and roofline
  latency as posynomials of z = log(size), probed from the layer expansion and checked
  against the cost and latency models;
- :mod:`~archdesign.optimize.relaxation`: the node relaxation, one cvxpy/Clarabel program
  per space (DPP), re-solved with new parameters at every node: each stage's (depth,
  kernel) choice relaxed to its convex hull (perspective exponential cones for the costs,
  linear entropy and conv counts); ρ, the ratio constraints and the depth penalty exact;
  each group's F·S over-estimated by its McCormick planes over the box. Its DeepMAD terms
  are checked against the objective at run time;
- :mod:`~archdesign.optimize.branching`: the nodes and where to split them (the McCormick
  slack of a group's F, a stage's fractional depth or kernel, a size variable, each
  estimate weighed by what such splits have gained: pseudo-costs);
- :mod:`~archdesign.optimize.local`: local search with exact evaluation (incumbents, and
  designs of spaces the MP cannot model, which then say they have no bound);
- :mod:`~archdesign.optimize.sensitivity`: shadow prices of the budgets at the design;
- :mod:`~archdesign.optimize.tree`: best-first branch and bound (a node within the
  tolerance of the incumbent is closed; the certified upper bound is the largest bound of
  any node not explored to the end), bounded by nodes, so the same inputs give the same
  design and bound on any machine;
- this module: the per-stage formulation on that loop (incumbents from rounding each
  node's relaxed solution to the grids, then a local search with the exact cost model;
  every reported design recounted exactly), and :func:`design`, which takes a RegNet space
  to :mod:`~archdesign.optimize.regnet` (every network listed and counted: gap 0), a space
  of per-block choices to :mod:`~archdesign.optimize.choices` and one none of them models
  to an exact enumeration (small) or a local search with no bound.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from archdesign.errors import InputError
from archdesign.hardware.models import RooflineModel, roofline_constants
from archdesign.objectives import DeepMAD, Objective, get_objective
from archdesign.optimize.branching import Node, PseudoCosts, Split, split
from archdesign.optimize.choices import ChoiceSolver, objective_key, shared
from archdesign.optimize.choices import latency_certified as choices_latency_certified
from archdesign.optimize.local import LocalSearch, by_group, figure_merit_bounds
from archdesign.optimize.posynomial import (
    LatencyTerms,
    Model,
    ModelingError,
    build_model,
    classify,
    grid,
    other_assignments,
    param_values,
    roofline_terms,
    typed,
    verify_latency,
)
from archdesign.optimize.problem import Budgets, DesignRules, Evaluation, Problem
from archdesign.optimize.regnet import enumerable, enumerate_space
from archdesign.optimize.relaxation import HullRelaxation, NodeBox, Solution
from archdesign.optimize.sensitivity import shadow_prices
from archdesign.optimize.tree import BranchAndBound
from archdesign.spaces import Parameter, SearchSpace, Value, get_space
from archdesign.spec import ArchSpec

logger = logging.getLogger(__name__)

# How far (relative) the relaxation's exact terms must put a local-search candidate below
# the best score or over a budget for the search to pass over it without a recount: far
# above their rounding error (they match the recount to 1e-6 or the model is refused).
SCREEN_MARGIN = 1e-5
# Relaxations solved before the designer returns its best design with the certified gap.
# The bound is work, not time, so the same problem gives the same design on any machine
# under any load (bench_mp's coarse ResNet-18/34/50 rows close their 0.5% gap in 121-407
# nodes).
DEFAULT_MAX_NODES = 1000


@dataclass
class Design:
    """The MP designer's answer."""

    spec: ArchSpec
    params: dict[str, Value]  # the space assignment (to_dict: "assignment")
    score: float
    upper_bound: float | None  # None: no bound (the space is not modeled; see notes)
    gap: float | None  # (upper_bound - score) / |score|
    figures: dict[str, float]  # exact recount: flops, params, activations, peak, rho, ...
    budgets: Budgets
    binding: list[str]
    shadow_prices: dict[str, dict[str, float]]
    seconds: float
    nodes: int
    status: str  # "optimal" (gap within tolerance), "node_limit", "time_limit", "no_bound"
    objective: str = "deepmad"
    notes: list[str] = field(default_factory=list)
    # every exactly evaluated feasible design no other one beats on both the score and
    # ``front_of`` (when asked for): what the search around the optimum found on the way
    front: list[dict[str, Value]] = field(default_factory=list)
    # with a latency budget: which part of the predicted latency the upper bound respects
    latency_certified: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score, "upper_bound": self.upper_bound, "gap": self.gap,
            **{k: self.figures[k] for k in ("flops", "params", "activations",
                                              "peak_activation_bytes", "rho")},
            **({"latency_ms": self.figures["latency_ms"]} if "latency_ms" in self.figures
               else {}),
            "budgets": self.budgets.to_dict(), "binding": self.binding,
            "shadow_prices": self.shadow_prices, "seconds": self.seconds,
            "nodes": self.nodes, "status": self.status, "objective": self.objective,
            "assignment": self.params, "notes": self.notes, "spec": self.spec.to_dict(),
            **({"latency_certified": self.latency_certified}
               if self.latency_certified is not None else {}),
        }


# -- the solver ----------------------------------------------------------------------------


class _Solver(BranchAndBound[Node]):
    def __init__(self, problem: Problem, tolerance: float, max_nodes: int,
                 time_limit: float | None, fixed: dict[str, Value],
                 screen: bool = True) -> None:
        if not isinstance(problem.objective, DeepMAD):
            raise InputError(f"the MP designer bounds the deepmad objective only (its "
                             f"relaxation models DeepMAD's entropy terms), not "
                             f"{problem.objective.name!r}: the MP cannot bound it, so a "
                             f"{problem.objective.name} objective can only be checked on "
                             f"designs; use archdesign search --score NAME --strategy nsga2, "
                             f"which evaluates it on every candidate")
        self.objective: DeepMAD = problem.objective
        space = problem.space
        kinds = classify(space)
        self.sizes: list[Parameter] = kinds["size"]
        self.depth_params: list[Parameter] = kinds["depth"]
        self.kernel_params: list[Parameter] = kinds["kernel"]
        super().__init__(problem, {k: space.parameter(k).check(v, "fixed")
                                   for k, v in fixed.items()}, tolerance, max_nodes, time_limit)
        others = [p for p in kinds["other"] if p.name not in self.fixed]
        self.combos = [{**c, **self.fixed} for c in other_assignments(others)]
        # what each assignment's models and checks are shared under within a sweep
        # (:func:`~archdesign.optimize.choices.shared_models`): none of them reads a budget
        keys = [(space.source, space.name, tuple(sorted(c.items()))) for c in self.combos]
        self.models = [shared((*key, "posynomial"), functools.partial(build_model, space, c))
                       for key, c in zip(keys, self.combos, strict=True)]
        self.latency_modeled = (problem.budgets.latency_ms is not None
                                and isinstance(problem.latency, RooflineModel))
        self.relaxations = [HullRelaxation(m, problem.budgets, self.objective, problem.rules,
                                           self._latency_terms(key, m))
                            for key, m in zip(keys, self.models, strict=True)]
        for key, relax in zip(keys, self.relaxations, strict=True):
            # its DeepMAD terms and budgeted costs, checked against the objective and model
            shared((*key, "verified", objective_key(self.objective),
                    tuple(sorted(relax.point_costs))),
                   functools.partial(relax.verify_objective, space))
        self.grids = [grid(p) for p in self.sizes]
        self.log_grids = [np.log(np.array(g)) for g in self.grids]
        self.grid_index = [{v: k for k, v in enumerate(g)} for g in self.grids]
        self.size_index = {p.name: i for i, p in enumerate(self.sizes)}
        self.ratios = self.models[0].ratios
        self.screen = screen  # see LocalSearch.screen
        self.screened = {name: limit for name, limit in problem.limits.items()
                         if name in self.relaxations[0].point_costs or name == "rho"}
        self.pseudo_costs = PseudoCosts()

    def _latency_terms(self, key: tuple[Any, ...], model: Model
                       ) -> tuple[RooflineModel, dict[tuple[int, int, int], LatencyTerms]
                                  ] | None:
        """The roofline latency of every block as posynomials, checked against the model
        (once per sweep: ``key`` names the model)."""
        roofline = self.problem.latency
        if not self.latency_modeled or not isinstance(roofline, RooflineModel):
            return None
        batch, dtype = self.problem.budgets.batch, self.problem.budgets.dtype

        def build() -> dict[tuple[int, int, int], LatencyTerms]:
            assert isinstance(roofline, RooflineModel)
            terms = {k: roofline_terms(part, roofline, batch, dtype)
                     for k, part in model.parts.items()}
            verify_latency(self.problem.space, model, roofline, terms, batch, dtype)
            return terms

        return roofline, shared((*key, "latency", self.problem.hardware, roofline.kind,
                                 repr(sorted(roofline.calibration.items())), batch, dtype),
                                build)

    def combo_of(self, params: dict[str, Value]) -> int:
        """The index of the assignment of the unmodeled parameters ``params`` has."""
        return next(i for i, combo in enumerate(self.combos)
                    if all(params[k] == v for k, v in combo.items()))

    def merit_bounds(self, cands: list[dict[str, Value]]
                     ) -> list[tuple[int, float]] | None:
        """From the relaxation's terms, exact at every point of the space (checked at run
        time) and, batched, a small fraction of a recount: each candidate's score and its
        FLOPs, params, activations and ρ over their budgets (:func:`figure_merit_bounds`,
        to ``SCREEN_MARGIN``)."""
        if not self.screen:
            return None

        def bounds(combo: int, group: list[dict[str, Value]]) -> list[tuple[int, float]]:
            score, costs = self.relaxations[combo].point_figures(group)
            over = np.array([costs[name] / limit for name, limit in self.screened.items()]
                            ).reshape(-1, len(group))
            return figure_merit_bounds(score, over, SCREEN_MARGIN)

        return by_group(cands, self.combo_of, bounds)

    # -- steps within the ratio constraints ---------------------------------------------

    def step(self, params: dict[str, Value], moved: str) -> dict[str, Value] | None:
        """A step within the space's ratio constraints: a ratio it breaks is repaired by
        moving the other size (:meth:`_repair`); None when it cannot be."""
        if self.problem.space.feasible(params):
            return params
        if not self.ratios:
            return None
        index = [self.grid_index[i][float(params[p.name])] for i, p in enumerate(self.sizes)]
        repaired = self._repair(index, moved=self.size_index.get(moved))
        if repaired is None:
            return None
        out = dict(params)
        for i, j in enumerate(repaired):
            out[self.sizes[i].name] = typed(self.sizes[i], self.grids[i][j])
        return out

    def round_solution(self, node: Node, sol: Solution) -> dict[str, Value]:
        """The node's relaxed solution rounded to the grids: each stage at its heaviest
        kernel and the candidate depth nearest its relaxed depth, sizes rounded down."""
        m = self.models[node.combo]
        relax = self.relaxations[node.combo]
        params: dict[str, Value] = dict(self.combos[node.combo])
        index = []
        for i in range(len(self.sizes)):
            j = int(np.searchsorted(self.log_grids[i], sol.z[i] + 1e-9, side="right")) - 1
            index.append(min(max(j, node.lo[i]), node.hi[i]))
        repaired = self._repair(index, node)
        for i, j in enumerate(index if repaired is None else repaired):
            params[self.sizes[i].name] = typed(self.sizes[i], self.grids[i][j])
        first, _ = relax.marginals(sol.weights)
        for s in range(m.num_stages):
            dp = m.stage_depth[s][0]
            if dp is not None:
                cands = node.depths[dp]
                params[self.depth_params[dp].name] = min(
                    cands, key=lambda d: abs(d - sol.depth[s]))
            kp = m.stage_kernel[s]
            if kp is not None:
                v = max(node.kernels[kp], key=lambda c: first[s].get(c, 0.0))
                params[self.kernel_params[kp].name] = param_values(self.kernel_params[kp])[v]
        return params

    def _allowed(self, i: int, j: int, log_low: float, log_high: float,
                 j_index: int) -> tuple[int, int]:
        """The grid indices of size i that ratio (i, j) allows with size j at ``j_index``."""
        g_i, w = self.log_grids[i], self.log_grids[j][j_index]
        return (int(np.searchsorted(g_i, w + log_low - 1e-12, side="left")),
                int(np.searchsorted(g_i, w + log_high + 1e-12, side="right")) - 1)

    def _repair(self, index: list[int], node: Node | None = None,
                moved: int | None = None) -> list[int] | None:
        """Grid indices moved into the space's ratio constraints: each numerator to the
        nearest grid value its ratio allows (within the node's box where it can be).
        Rounding every size down can leave a ratio just outside its bounds, and a local
        step on a width drags its bottleneck width along. None when the ratio cannot be
        met by moving the numerator (or the numerator is the size that ``moved``)."""
        out = list(index)
        for i, j, log_low, log_high in self.ratios:
            low, high = self._allowed(i, j, log_low, log_high, out[j])
            if low <= out[i] <= high:
                continue
            if i == moved or low > high:
                return None
            if node is not None and max(low, node.lo[i]) <= min(high, node.hi[i]):
                low, high = max(low, node.lo[i]), min(high, node.hi[i])
            out[i] = min(max(out[i], low), high)
        return out

    def tighten(self, node: Node) -> Node | None:
        """The node's box narrowed by the space's ratio constraints (each bound of z_i −
        z_j bounds one variable by the other's range) and by the budgets (the largest
        size of each variable the cheapest completion of the box affords:
        :meth:`HullRelaxation.budget_caps`), to a fixed point; None when they leave it
        empty. Tighter boxes give tighter McCormick planes."""
        lo, hi = list(node.lo), list(node.hi)
        relax = self.relaxations[node.combo]
        changed = True
        while changed:
            changed = False
            box = self.box(replace(node, lo=tuple(lo), hi=tuple(hi)))
            counts = relax.budget_caps(box, [g[a:b + 1] for g, a, b in
                                             zip(self.log_grids, lo, hi, strict=True)])
            for i, count in enumerate(counts):
                if count == 0:
                    return None
                if lo[i] + count - 1 < hi[i]:
                    hi[i] = lo[i] + count - 1
                    changed = True
            for i, j, log_low, log_high in self.ratios:
                g_i, g_j = self.log_grids[i], self.log_grids[j]
                # z_i >= z_j + log_low and z_i <= z_j + log_high
                new = [max(lo[i], int(np.searchsorted(g_i, g_j[lo[j]] + log_low - 1e-12))),
                       min(hi[i], int(np.searchsorted(g_i, g_j[hi[j]] + log_high + 1e-12,
                                                      side="right")) - 1),
                       max(lo[j], int(np.searchsorted(g_j, g_i[lo[i]] - log_high - 1e-12))),
                       min(hi[j], int(np.searchsorted(g_j, g_i[hi[i]] - log_low + 1e-12,
                                                      side="right")) - 1)]
                if new != [lo[i], hi[i], lo[j], hi[j]]:
                    lo[i], hi[i], lo[j], hi[j] = new
                    changed = True
                if lo[i] > hi[i] or lo[j] > hi[j]:
                    return None
        return replace(node, lo=tuple(lo), hi=tuple(hi))

    # -- bounds ----------------------------------------------------------------------------

    def box(self, node: Node) -> NodeBox:
        lo = np.array([self.log_grids[i][j] for i, j in enumerate(node.lo)])
        hi = np.array([self.log_grids[i][j] for i, j in enumerate(node.hi)])
        return NodeBox(lo, hi, node.depths, node.kernels, dict(node.ties))

    def bound(self, node: Node, parent_bound: float = math.inf) -> None:
        lower = self.incumbent.score if self.incumbent is not None else None
        sol = self.relaxations[node.combo].solve(self.box(node), lower=lower)
        self.nodes += 1
        node.sol = sol
        node.bound = -math.inf if sol is None else min(sol.value, parent_bound)
        if node.origin is not None:
            node.origin.report(node.bound, self.pseudo_costs, self._lower())
            node.origin = None

    # -- branching ---------------------------------------------------------------------------

    def branch(self, node: Node) -> list[Node]:
        parts, key, estimate = split(node, self.models[node.combo],
                                     self.relaxations[node.combo], self.box(node),
                                     self.log_grids, self.pseudo_costs)
        # the ratio constraints may leave nothing in a part
        children = [child for child in map(self.tighten, parts) if child is not None]
        bounded = [child for child in children if not child.is_leaf()]
        origin = Split(key, estimate, node.bound, len(bounded))
        for child in bounded:  # their bounds measure the split
            child.origin = origin
        return children

    # -- the search --------------------------------------------------------------------------

    def roots(self) -> list[Node]:
        rules = self.problem.rules
        out = []
        excluded = []
        for c, m in enumerate(self.models):
            kernels = []
            for j, p in enumerate(self.kernel_params):
                ok = []
                for idx, k in enumerate(param_values(p)):
                    stages = [s for s in range(m.num_stages) if m.stage_kernel[s] == j]
                    sizes = [m.parts[(s, 0, 0)].out_size for s in stages]
                    if all(rules.kernel_ok(int(k), size) for size in sizes):
                        ok.append(idx)
                if not ok:  # e.g. a resolution whose last feature maps are too small
                    excluded.append(f"{p.name} at {self.combos[c]}")
                    break
                order = param_values(p)
                kernels.append(tuple(sorted(ok, key=lambda i: float(order[i]))))
            if len(kernels) < len(self.kernel_params):
                continue
            depths = tuple(tuple(int(v) for v in param_values(p)) for p in self.depth_params)
            lo = tuple(0 for _ in self.sizes)
            hi = tuple(len(g) - 1 for g in self.grids)
            root = self.tighten(Node(c, lo, hi, depths, tuple(kernels)))
            if root is not None:
                out.append(root)
        if not out and excluded:  # (no root at all: the budgets leave nothing, below)
            raise InputError(f"no kernel satisfies the design rules (kernel <= feature map / "
                             f"1.5) for: {'; '.join(excluded)}")
        if excluded:
            logger.info("design rules exclude %s", "; ".join(excluded))
        return out

    def is_leaf(self, node: Node) -> bool:
        return node.is_leaf()

    def leaf_params(self, node: Node) -> dict[str, Value]:
        params: dict[str, Value] = dict(self.combos[node.combo])
        for i, p in enumerate(self.sizes):
            params[p.name] = typed(p, self.grids[i][node.lo[i]])
        for j, p in enumerate(self.depth_params):
            params[p.name] = node.depths[j][0]
        for j, p in enumerate(self.kernel_params):
            params[p.name] = param_values(p)[node.kernels[j][0]]
        return params

    # -- sensitivities ------------------------------------------------------------------------

    def shadow_prices(self, best: Evaluation) -> dict[str, dict[str, float]]:
        """Duals of the width program at the design's depths and kernels, with the score
        linearized at the design: d(score)/d(budget)."""
        params = best.params
        c = self.combo_of(params)
        relax = self.relaxations[c]
        node = Node(c, tuple(0 for _ in self.sizes), tuple(len(g) - 1 for g in self.grids),
                     tuple((int(params[p.name]),) for p in self.depth_params),
                     tuple((param_values(p).index(params[p.name]),) for p in self.kernel_params))
        box = self.box(node)
        z0 = np.array([math.log(float(params[p.name])) for p in self.sizes])
        return shadow_prices(relax, box, z0)


# -- the public entry point ------------------------------------------------------------------


def design(space: str | SearchSpace, budgets: Budgets, objective: str | Objective = "deepmad",
           hardware: str | None = None, *, rules: DesignRules | None = None,
           tolerance: float = 0.005, max_nodes: int = DEFAULT_MAX_NODES,
           time_limit: float | None = None, fixed: dict[str, Any] | None = None,
           latency_model: str | None = None, front_of: str | None = None,
           fallback: bool = False) -> Design:
    """The best design of ``space`` within ``budgets``, with a certified upper bound.

    ``tolerance``: stop once the bound is within this fraction of the incumbent (0: prove
    optimality). ``max_nodes``: return the best design, with its certified gap, once this
    many relaxations are solved; a pure bound on work, so the answer is the same whatever
    the machine's speed and load. ``time_limit``: seconds, an optional cut on top of it; a
    design it cuts depends on the machine's speed and load, and says so in its notes.
    ``fixed``: space parameters held at given values (e.g. resolution).
    ``hardware``: a profile name; with ``budgets.latency_ms`` the latency (``latency_model``,
    by default the profile's own) is enforced exactly on every design. The roofline model
    is also in the relaxation, so the bound respects the latency budget; a measured
    (table, fitted) model is not, and the bound then ignores it (the result says so).
    ``front_of``: a figure (e.g. ``latency_ms``) for :attr:`Design.front`.
    ``fallback``: for a space the MP cannot model (:class:`ModelingError`), instead of
    refusing: enumerate it exactly when it has at most ``ENUMERATION_LIMIT`` networks (the
    optimum, certified: gap 0, and a note saying so), else return the best design of a
    local search with exact evaluation, which has no upper bound or gap (``status``
    "no_bound", and a note saying why).
    """
    start = time.perf_counter()
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise InputError(f"max_nodes: expected an integer >= 1, got {max_nodes!r}")
    if time_limit is not None and not time_limit > 0:
        raise InputError(f"time_limit: expected a positive number of seconds, got "
                         f"{time_limit!r}")
    if isinstance(space, str):
        space = get_space(space)
    if isinstance(objective, str):
        objective = get_objective(objective)
    problem = Problem(space, budgets, objective, hardware, rules, latency_model)
    held = {k: space.parameter(k).check(v, "fixed") for k, v in (fixed or {}).items()}
    if enumerable(space):
        return _regnet(problem, held, time_limit, front_of, start)
    solver: _Solver | ChoiceSolver
    try:
        solver = _Solver(problem, tolerance, max_nodes, time_limit, dict(fixed or {}),
                         screen=front_of is None)
        certified = _latency_certified(problem)
    except ModelingError as staged:
        try:  # a space of per-block choices (OFA, FBNet, NAS-Bench-Macro)
            solver = ChoiceSolver(problem, held, tolerance, max_nodes, time_limit,
                                  screen=front_of is None)
            certified = choices_latency_certified(problem)
        except ModelingError as per_block:
            if not fallback:
                raise staged from None
            exc = ModelingError(f"{staged}; as per-block choices: {per_block}")
            free = [p for p in space.parameters if p.name not in held]
            if math.prod(p.count for p in free) <= ENUMERATION_LIMIT:
                return _enumerated(problem, exc, held, free, front_of, start)
            return _no_bound(problem, exc, held, max_nodes, front_of, start)
    upper, status = solver.run()
    best = solver.incumbent
    if best is None and status != "optimal":
        raise InputError(f"the {status.replace('_', ' ')} stopped the MP designer after "
                         f"{solver.nodes} nodes, before it found a design within the budgets; "
                         f"raise max_nodes" + (" or the time limit"
                                               if status == "time_limit" else ""))
    if best is None:
        raise InputError(_infeasible_message(problem, solver))
    gap = (upper - best.score) / abs(best.score) if best.score else math.inf
    notes = []
    if status == "time_limit":
        notes.append(f"the time limit of {time_limit:g} s stopped the search after "
                     f"{solver.nodes} nodes (of max_nodes {max_nodes}): this design depends "
                     f"on the machine's speed and load; bound the search by max_nodes alone "
                     f"for the same design everywhere")
    elif status == "node_limit":
        notes.append(f"the node limit stopped the search after {solver.nodes} nodes, before "
                     f"the gap closed to the tolerance")
    if budgets.latency_ms is not None and not solver.latency_modeled:
        notes.append(f"the {problem.latency.kind if problem.latency else ''} latency model is "
                     f"enforced exactly on designs but only the roofline model is in the "
                     f"relaxation: the upper bound ignores the latency budget")
    binding = [name for name, limit in budgets.items().items()
               if best.usage[name] >= 0.99 * limit]
    result = Design(best.spec, best.params, best.score, upper, max(gap, 0.0), best.figures,
                    budgets, binding, solver.shadow_prices(best),
                    time.perf_counter() - start, solver.nodes, status, objective.name, notes,
                    solver.front(front_of) if front_of else [], certified)
    logger.info("design: score %.2f, bound %.2f, gap %.3f%%, %d nodes, %.1fs", result.score,
                upper, 100 * max(gap, 0.0), solver.nodes, result.seconds)
    return result


def _latency_certified(problem: Problem) -> str | None:
    """Which part of the predicted latency the bound respects, in words (None without a
    latency budget)."""
    model = problem.latency
    if problem.budgets.latency_ms is None or model is None:
        return None
    profile = model.profile
    if not isinstance(model, RooflineModel):
        return (f"none: the {model.kind} model of {profile.name} is enforced exactly on "
                f"designs, not in the bound")
    kind = "calibrated (fitted on measured networks)" if \
        profile.validation.get("calibration") else "datasheet"
    constant = model.calibration.get("constant_ms", 0.0)
    overhead_s, per_group_s, shape, overlap = roofline_constants(profile, model.calibration)
    low, high = overhead_s.min() * 1e6, overhead_s.max() * 1e6
    overhead = (f"{low:.3g}" if low == high else f"{low:.3g}-{high:.3g}") + " µs per kernel"
    if per_group_s:
        overhead += f" + {per_group_s * 1e6:.3g} µs per group and sample"
    compute = "compute × shape factor" if shape.any() else "compute"
    kernel = (f"max({compute}, memory, {overhead})" if overlap
              else f"max({compute}, memory) + {overhead}")
    return (f"all of it: the {kind} roofline of {profile.name}, Σ over fused kernels of "
            f"{kernel}, + {constant:.3g} ms per network, as posynomials checked against "
            f"the profile's own predictions at sampled networks")


# Starts of the local search that designs a space without a bound: the space's defaults
# and this many seeded samples.
NO_BOUND_SAMPLES = 3


# Networks a space the MP cannot model may have for the designer to enumerate it exactly
# (NAS-Bench-Macro's 3^8 = 6,561 take seconds).
ENUMERATION_LIMIT = 10_000


def _enumerated(problem: Problem, reason: ModelingError, held: dict[str, Value],
                free: list[Parameter], front_of: str | None, start: float) -> Design:
    """The optimum of a small space the MP cannot model, by evaluating every network of
    it (within its constraints) exactly: certified with gap 0."""
    space = problem.space
    search = LocalSearch(problem, held)
    names = [p.name for p in free]
    for combo in itertools.product(*(param_values(p) for p in free)):
        params = {**held, **dict(zip(names, combo, strict=True))}
        if space.feasible(params):
            search.evaluate(params)
    best = _incumbent(search, f"no network of space {space.name!r} fits the budgets "
                              f"{problem.budgets.items()} and the design rules (all")
    notes = [f"certified by exact enumeration of all {len(search.cache)} networks of the "
             f"space (the MP's relaxation cannot model it: {reason})"]
    return Design(best.spec, best.params, best.score, best.score, 0.0, best.figures,
                  problem.budgets, _binding(problem, best), {}, time.perf_counter() - start,
                  0, "optimal",
                  problem.objective.name, notes, search.front(front_of) if front_of else [],
                  None if problem.latency is None or problem.budgets.latency_ms is None else
                  f"all of it: every network is evaluated with the {problem.latency.kind} "
                  f"model of {problem.latency.profile.name}")


def _regnet(problem: Problem, held: dict[str, Value], time_limit: float | None,
            front_of: str | None, start: float) -> Design:
    """The optimum of a RegNet space by exact enumeration (:mod:`~archdesign.optimize.regnet`):
    certified with gap 0 unless a time limit cut it (then no bound)."""
    found = enumerate_space(problem, held, front_of,
                            None if time_limit is None else start + time_limit)
    best = found.best
    total = f"{found.networks:,} (depth, w0, wa, wm) networks x {found.combos} assignments of " \
            f"the other parameters; {found.evaluated:,} pairs counted, the others ruled out " \
            f"by floors of the budgets and ceilings of the score over each width vector's " \
            f"depths"
    if found.complete:
        notes = [f"certified by exact enumeration: every network of the space ({total}), "
                 f"each counted by its blocks' figures (checked against the exact evaluation "
                 f"at sampled networks and at the design); RegNet's quantized widths make "
                 f"(wa, wm) finitely many cells, all listed"]
        upper: float | None = best.score
        gap: float | None = 0.0
        status = "optimal"
    else:
        notes = [f"the time limit of {time_limit:g} s stopped the enumeration after {total}: "
                 f"no bound; this design depends on the machine's speed and load"]
        upper = gap = None
        status = "time_limit"
    certified = None
    if problem.latency is not None and problem.budgets.latency_ms is not None:
        certified = (f"all of it: every network's latency under the {problem.latency.kind} "
                     f"model of {problem.latency.profile.name} is counted"
                     if found.complete else "none: the enumeration was cut short")
    return Design(best.spec, best.params, best.score, upper, gap, best.figures,
                  problem.budgets, _binding(problem, best), {}, time.perf_counter() - start,
                  0, status, problem.objective.name, notes, found.front, certified)


def _no_bound(problem: Problem, reason: ModelingError, held: dict[str, Value],
              max_nodes: int, front_of: str | None, start: float) -> Design:
    """The best design of a deterministic local search over a space the MP cannot model:
    steepest ascent (at most ``max_nodes`` steps each) from the defaults and
    ``NO_BOUND_SAMPLES`` seeded samples, every candidate recounted exactly."""
    space = problem.space
    search = LocalSearch(problem, held)
    rng = np.random.default_rng(0)
    starts = [{**space.defaults(), **held},
              *({**space.sample(rng), **held} for _ in range(NO_BOUND_SAMPLES))]
    for params in starts:
        search.local_search(params, max_steps=max_nodes)
    best = _incumbent(search, f"no design of space {space.name!r} within the budgets "
                              f"{problem.budgets.items()} and the design rules was found by "
                              f"a local search from {len(starts)} starts (",
                      f"; the MP cannot bound this space: {reason}")
    notes = [f"no bound: {reason}. This design is the best of a local search from "
             f"{len(starts)} starts ({len(search.cache)} networks evaluated exactly), "
             f"not certified"]
    return Design(best.spec, best.params, best.score, None, None, best.figures,
                  problem.budgets, _binding(problem, best), {}, time.perf_counter() - start,
                  0, "no_bound",
                  problem.objective.name, notes, search.front(front_of) if front_of else [])


def _incumbent(search: LocalSearch, failure: str, after: str = "") -> Evaluation:
    """The best feasible network ``search`` evaluated, or an :class:`InputError`:
    ``failure``, how many networks were evaluated, what the closest one breaks, ``after``."""
    if search.incumbent is not None:
        return search.incumbent
    closest = min(search.cache.values(), key=lambda ev: len(ev.violations))
    raise InputError(f"{failure}{len(search.cache)} networks evaluated; the closest breaks: "
                     f"{'; '.join(closest.violations)}){after}")


def _binding(problem: Problem, best: Evaluation) -> list[str]:
    """The budgets ``best`` uses at least 99% of."""
    return [name for name, limit in problem.budgets.items().items()
            if best.usage[name] >= 0.99 * limit]


def _infeasible_message(problem: Problem, solver: LocalSearch) -> str:
    space = problem.space
    smallest = {p.name: (param_values(p)[0] if p.name not in solver.fixed else solver.fixed[p.name])
                for p in space.parameters}
    figures = problem.figures(space.decode(smallest))
    parts = ", ".join(f"{k} {figures[k]:.4g}" for k in problem.budgets.items())
    return (f"no design of space {space.name!r} fits the budgets "
            f"{problem.budgets.items()}; the smallest network of the space costs {parts}")
