"""The DeepMAD mathematical program, solved by branch and bound over cvxpy relaxations.

Maximize the DeepMAD score over a staged space subject to budgets (FLOPs, params,
activations, ρ; peak memory and latency are enforced exactly on every design) and the
design rules. Variables: every width and expansion (grids), every depth and kernel.

**Relaxation** (one convex program per node, cvxpy/Clarabel, compiled once per space and
re-solved with new parameters). Widths and expansions become z = log(value) within the
node's box. For a node's depth interval [d_lo, d_hi] and kernel set [k_min, k_max]:

- costs use d_lo and k_min: each is a posynomial in exp(z), so cost ≤ B is the convex
  log-sum-exp(A·z + log c) ≤ log B (a geometric program in the widths);
- ρ ≤ ρ0 is Σ log(c·k²/g) ≥ L·log(L/ρ0) over the convs of every group prefix: linear in
  z; the left side uses d_hi and k_max, L uses d_lo;
- the score Σ_g α_g·F_g·S_g has F_g = log C_g + log r_g² and S_g both affine in z (S with
  d_hi and k_max); each bilinear F·S is over-estimated by its McCormick envelope over
  the box, so the node's optimum bounds every design in the node from above; minus a
  lower bound of the depth penalty (β·exp of the least std of depths in the box).

Every term is monotone in depth and kernel the right way, so the relaxation is valid.

**Search**: best-first branch and bound. A node whose bound is within the tolerance of the
incumbent is closed; the certified upper bound is the largest bound of any node not
explored to the end. Incumbents come from rounding each node's relaxed solution down to
the grids and a local search with the exact cost model; every reported design is
recounted exactly.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np

from archdesign.errors import InputError
from archdesign.objectives import DeepMAD, Objective, get_objective
from archdesign.optimize.problem import Budgets, DesignRules, Evaluation, Problem
from archdesign.optimize.relaxation import (
    COSTS,
    Model,
    build_model,
    classify,
    grid,
    other_assignments,
    typed,
)
from archdesign.spaces import Parameter, SearchSpace, Value, get_space
from archdesign.spec import ArchSpec

logger = logging.getLogger(__name__)

_ZERO_LOG = -60.0  # log-coefficient of a monomial absent from a node (exp(-60) ~ 1e-26)


@dataclass
class Design:
    """The MP designer's answer."""

    spec: ArchSpec
    params: dict[str, Value]
    score: float
    upper_bound: float
    gap: float  # (upper_bound - score) / |score|
    figures: dict[str, float]  # exact recount: flops, params, activations, peak, rho, ...
    budgets: Budgets
    binding: list[str]
    shadow_prices: dict[str, dict[str, float]]
    seconds: float
    nodes: int
    status: str  # "optimal" (gap within tolerance) or "time_limit"
    objective: str = "deepmad"
    notes: list[str] = field(default_factory=list)

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
            "params": self.params, "notes": self.notes, "spec": self.spec.to_dict(),
        }


# -- the convex relaxation -----------------------------------------------------------------


class _Relaxation:
    """One compiled cvxpy program for a model; nodes only change its parameters."""

    def __init__(self, model: Model, budgets: Budgets, objective: DeepMAD,
                 rules: DesignRules) -> None:
        self.model = model
        self.objective = objective
        n = model.n
        self.budgets = {name: limit for name, limit in budgets.items().items()
                        if name in COSTS}
        self.rho0 = budgets.rho
        self.order = self._part_order()
        self.group_ends = self._groups()
        self.alpha = np.array(objective.alpha_for(len(self.group_ends)))
        # unique monomial exponents per budgeted cost, and each part's coefficients on them
        self.rows: dict[str, list[tuple[float, ...]]] = {}
        self.coefs: dict[str, dict[tuple[int, int, int], np.ndarray]] = {}
        for name in self.budgets:
            rows: dict[tuple[float, ...], int] = {}
            for part in model.parts.values():
                for m in part.costs[name]:
                    rows.setdefault(m.exps, len(rows))
            self.rows[name] = list(rows)
            self.coefs[name] = {}
            for key, part in model.parts.items():
                vec = np.zeros(len(rows))
                for m in part.costs[name]:
                    vec[rows[m.exps]] += m.coef
                self.coefs[name][key] = vec
        g = len(self.group_ends)
        self.z = cp.Variable(n)
        self.t = cp.Variable(g)
        self.lo = cp.Parameter(n)
        self.hi = cp.Parameter(n)
        self.log_coef = {name: cp.Parameter(len(self.rows[name])) for name in self.budgets}
        self.plane = [(cp.Parameter((g, n)), cp.Parameter(g)) for _ in range(2)]
        cons: list[Any] = [self.z >= self.lo, self.z <= self.hi]
        self.budget_cons = {}
        for name, limit in self.budgets.items():
            a = np.array(self.rows[name])
            self.budget_cons[name] = cp.log_sum_exp(a @ self.z + self.log_coef[name]) \
                <= math.log(limit)
            cons.append(self.budget_cons[name])
        self.rho_cons = None
        if self.rho0 is not None:
            self.rho_q = cp.Parameter((g, n))
            self.rho_r = cp.Parameter(g)
            self.rho_cons = self.rho_q @ self.z >= self.rho_r
            cons.append(self.rho_cons)
        if rules.monotone_widths:
            idx = [w for w in model.stage_width if w is not None]
            cons.extend(self.z[a] <= self.z[b] for a, b in itertools.pairwise(idx) if a != b)
        for p_mat, p_vec in self.plane:
            cons.append(self.t <= p_mat @ self.z + p_vec)
        self.problem = cp.Problem(cp.Maximize(self.alpha @ self.t), cons)

    # -- structure ----------------------------------------------------------------------

    def _part_order(self) -> list[tuple[int, int]]:
        order = [(-1, 0)]
        for s in range(self.model.num_stages):
            order += [(s, 0), (s, 1)]
        return [*order, (self.model.num_stages, 0)]

    def _groups(self) -> list[int]:
        """Index into ``order`` of the last part of every group."""
        ends = []
        for i, (s, b) in enumerate(self.order):
            if 0 <= s < self.model.num_stages and b == 0 and \
                    self.model.parts[(s, 0, 0)].downsamples:
                ends.append(i - 1)
        return [*ends, len(self.order) - 1]

    def multiplicity(self, stage: int, block: int, depth: dict[int, int]) -> int:
        if not 0 <= stage < self.model.num_stages:
            return 1
        d = depth[stage]
        return 1 if block == 0 else d - 1

    def variant(self, stage: int, kernels: dict[int, int]) -> int:
        if 0 <= stage < self.model.num_stages and self.model.stage_kernel[stage] is not None:
            return kernels[stage]
        return 0

    # -- node data -----------------------------------------------------------------------

    def node_terms(self, node: _Node) -> dict[str, Any]:
        """Affine forms of the node: S_g and F_g (vec, const), ρ rows, cost coefficients."""
        m = self.model
        d_lo, d_hi, k_lo, k_hi = node.stage_bounds(m)
        n = m.n
        s_vec, s_const = np.zeros(n), 0.0
        _w_vec, _w_const, convs_hi, convs_lo = np.zeros(n), 0.0, 0, 0
        groups_s, groups_f, rho_rows = [], [], []
        ends = set(self.group_ends)
        last_out = (np.zeros(n), 0.0, 1)
        for i, (s, b) in enumerate(self.order):
            hi_part = m.parts[(s, b, self.variant(s, k_hi))]
            mult_hi = self.multiplicity(s, b, d_hi)
            mult_lo = self.multiplicity(s, b, d_lo)
            s_vec = s_vec + mult_hi * hi_part.entropy[0]
            s_const += mult_hi * hi_part.entropy[1]
            convs_lo += mult_lo * hi_part.convs
            convs_hi += mult_hi * hi_part.convs
            if (s < m.num_stages and b == 0) or hi_part.convs:
                last_out = (*hi_part.out_channels, hi_part.out_size) if s < m.num_stages \
                    else (*hi_part.out_channels, last_out[2])
            if i in ends:
                vec, const, size = last_out
                groups_s.append((s_vec.copy(), s_const))
                groups_f.append((vec, const + 2 * math.log(size)))
                rho_rows.append((2 * s_vec, 2 * s_const, convs_lo))
        coefs = {}
        for name in self.budgets:
            total = np.zeros(len(self.rows[name]))
            for s, b in self.order:
                mult = self.multiplicity(s, b, d_lo)
                if mult:
                    total += mult * self.coefs[name][(s, b, self.variant(s, k_lo))]
            coefs[name] = total
        return {"S": groups_s, "F": groups_f, "rho": rho_rows, "coefs": coefs}

    def solve(self, node: _Node, lo: np.ndarray, hi: np.ndarray,
              tangent_at: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
        """The node's bound on Σα·F·S (without the depth penalty) and its solution."""
        terms = self.node_terms(node)
        self.lo.value, self.hi.value = lo, hi
        for name, total in terms["coefs"].items():
            with np.errstate(divide="ignore"):
                logs = np.where(total > 0, np.log(np.maximum(total, 1e-300)), _ZERO_LOG)
            self.log_coef[name].value = logs
        if self.rho0 is not None:
            q = np.array([row[0] for row in terms["rho"]])
            r = np.array([row[2] * math.log(row[2] / self.rho0) - row[1]
                          for row in terms["rho"]])
            self.rho_q.value, self.rho_r.value = q, r
        planes = _planes(terms["S"], terms["F"], lo, hi, tangent_at)
        for (p_mat, p_vec), (mat, vec) in zip(self.plane, planes, strict=True):
            p_mat.value, p_vec.value = mat, vec
        try:
            self.problem.solve(solver=cp.CLARABEL)
        except cp.error.SolverError:
            logger.debug("relaxation solver failure at %s", node)
            return math.inf, None
        if self.problem.status in ("infeasible", "infeasible_inaccurate"):
            return -math.inf, None
        if self.problem.status not in ("optimal", "optimal_inaccurate") or self.z.value is None:
            return math.inf, None
        return float(self.problem.value), np.array(self.z.value)

    def objective_at(self, node: _Node, z: np.ndarray) -> float:
        terms = self.node_terms(node)
        return float(sum(a * (f[0] @ z + f[1]) * (s[0] @ z + s[1]) for a, f, s in
                         zip(self.alpha, terms["F"], terms["S"], strict=True)))


def _planes(s_terms: list[tuple[np.ndarray, float]], f_terms: list[tuple[np.ndarray, float]],
            lo: np.ndarray, hi: np.ndarray,
            tangent_at: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two McCormick over-estimators of every F_g·S_g on the box (or, at a point, the
    tangent plane twice: the linearization used for shadow prices)."""
    g, n = len(s_terms), len(lo)
    out = [(np.zeros((g, n)), np.zeros(g)) for _ in range(2)]
    for i, ((sv, sc), (fv, fc)) in enumerate(zip(s_terms, f_terms, strict=True)):
        if tangent_at is not None:
            s0, f0 = sv @ tangent_at + sc, fv @ tangent_at + fc
            for mat, vec in out:
                mat[i] = f0 * sv + s0 * fv
                vec[i] = f0 * sc + s0 * fc - f0 * s0
            continue
        s_lo, s_hi = _interval(sv, sc, lo, hi)
        f_lo, f_hi = _interval(fv, fc, lo, hi)
        # F·S <= F_hi·S + S_lo·F - F_hi·S_lo and F·S <= F_lo·S + S_hi·F - F_lo·S_hi
        for (mat, vec), (fb, sb) in zip(out, ((f_hi, s_lo), (f_lo, s_hi)), strict=True):
            mat[i] = fb * sv + sb * fv
            vec[i] = fb * sc + sb * fc - fb * sb
    return out


def _interval(vec: np.ndarray, const: float, lo: np.ndarray,
              hi: np.ndarray) -> tuple[float, float]:
    low = const + float(np.sum(np.minimum(vec * lo, vec * hi)))
    high = const + float(np.sum(np.maximum(vec * lo, vec * hi)))
    return low, high


def min_std(lo: list[int], hi: list[int]) -> float:
    """The least population std of a vector with d_i in [lo_i, hi_i] (continuous).

    The minimizer is d = clip(t, lo, hi) for some t; the variance is a quadratic in t
    between consecutive bounds, so each piece is minimized exactly.
    """
    if not lo:
        return 0.0
    lo_a, hi_a = np.array(lo, float), np.array(hi, float)
    points = np.unique(np.concatenate([lo_a, hi_a]))
    best = math.inf
    for a, b in itertools.pairwise([*points, points[-1]]):
        ts = [a, b]
        free = (lo_a <= a) & (hi_a >= b) if b > a else np.zeros(len(lo_a), bool)
        k = int(free.sum())
        if k and b > a:
            fixed_sum = float(np.clip(a, lo_a, hi_a)[~free].sum())
            n = len(lo_a)
            # var(t) is minimal where t equals the mean: t·(n-k) = sum of the fixed values
            t_star = fixed_sum / (n - k) if k < n else a
            ts.append(float(np.clip(t_star, a, b)))
        for t in ts:
            best = min(best, float(np.std(np.clip(t, lo_a, hi_a))))
    return best


# -- nodes ---------------------------------------------------------------------------------


@dataclass
class _Node:
    combo: int
    lo: tuple[int, ...]  # grid index bounds of every size variable
    hi: tuple[int, ...]
    depths: tuple[tuple[int, ...], ...]  # candidate values of every depth parameter
    kernels: tuple[tuple[int, ...], ...]  # candidate choice indices of every kernel param
    bound: float = math.inf
    z: np.ndarray | None = None

    def stage_bounds(self, m: Model) -> tuple[dict[int, int], dict[int, int], dict[int, int],
                                              dict[int, int]]:
        d_lo, d_hi, k_lo, k_hi = {}, {}, {}, {}
        for s in range(m.num_stages):
            param, fixed = m.stage_depth[s]
            d_lo[s] = fixed if param is None else self.depths[param][0]
            d_hi[s] = fixed if param is None else self.depths[param][-1]
            kp = m.stage_kernel[s]
            k_lo[s] = 0 if kp is None else self.kernels[kp][0]
            k_hi[s] = 0 if kp is None else self.kernels[kp][-1]
        return d_lo, d_hi, k_lo, k_hi

    def is_leaf(self) -> bool:
        return (self.lo == self.hi and all(len(d) == 1 for d in self.depths)
                and all(len(k) == 1 for k in self.kernels))


# -- the solver ----------------------------------------------------------------------------


class _Solver:
    def __init__(self, problem: Problem, tolerance: float, time_limit: float,
                 fixed: dict[str, Value]) -> None:
        if not isinstance(problem.objective, DeepMAD):
            raise InputError(f"the MP designer optimizes the deepmad objective, not "
                             f"{problem.objective.name!r}; use the Optuna search for others")
        self.problem = problem
        self.objective: DeepMAD = problem.objective
        self.tolerance = tolerance
        self.time_limit = time_limit
        space = problem.space
        kinds = classify(space)
        self.sizes: list[Parameter] = kinds["size"]
        self.depth_params: list[Parameter] = kinds["depth"]
        self.kernel_params: list[Parameter] = kinds["kernel"]
        self.fixed = {k: space.parameter(k).check(v, "fixed") for k, v in fixed.items()}
        others = [p for p in kinds["other"] if p.name not in self.fixed]
        self.combos = [{**c, **self.fixed} for c in other_assignments(others)]
        self.models = [build_model(space, c) for c in self.combos]
        self.relaxations = [_Relaxation(m, problem.budgets, self.objective, problem.rules)
                            for m in self.models]
        self.grids = [grid(p) for p in self.sizes]
        self.log_grids = [np.log(np.array(g)) for g in self.grids]
        self.cache: dict[tuple[Any, ...], Evaluation] = {}
        self.incumbent: Evaluation | None = None
        self.nodes = 0

    # -- exact evaluation and local search ----------------------------------------------

    def all_params(self) -> list[Parameter]:
        return [p for p in self.problem.space.parameters]

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

    def _merit(self, ev: Evaluation) -> tuple[int, float]:
        if ev.feasible:
            return (1, ev.score)
        excess = sum(max(0.0, ev.usage[k] / v - 1) for k, v in
                     self.problem.budgets.items().items())
        return (0, -excess - len(ev.violations))

    def _neighbors(self, params: dict[str, Value], fixed_names: set[str]) -> list[dict]:
        out = []
        for p in self.problem.space.parameters:
            if p.name in fixed_names:
                continue
            values = _values(p)
            i = values.index(params[p.name])
            for j in (i - 1, i + 1):
                if 0 <= j < len(values):
                    out.append({**params, p.name: values[j]})
        return out

    def local_search(self, params: dict[str, Value], max_steps: int = 60,
                     pairs: bool = False) -> Evaluation:
        """Steepest ascent over single (and, with ``pairs``, paired) grid steps, with exact
        figures throughout."""
        fixed_names = set(self.fixed)
        current = self.evaluate(params)
        for _ in range(max_steps):
            best, best_merit = None, self._merit(current)
            singles = self._neighbors(current.params, fixed_names)
            for cand in singles:
                ev = self.evaluate(cand)
                if self._merit(ev) > best_merit:
                    best, best_merit = ev, self._merit(ev)
            if best is None and current.feasible and pairs:
                # trade: one parameter up, another down (moves along the budget surface)
                for cand in singles:
                    for pair in self._neighbors(cand, fixed_names):
                        ev = self.evaluate(pair)
                        if self._merit(ev) > best_merit:
                            best, best_merit = ev, self._merit(ev)
            if best is None:
                break
            current = best
        return current

    def round_solution(self, node: _Node, z: np.ndarray) -> dict[str, Value]:
        """The node's relaxed solution rounded down to the grids (structure at its low end)."""
        m = self.models[node.combo]
        params: dict[str, Value] = dict(self.combos[node.combo])
        for i, p in enumerate(self.sizes):
            g = self.log_grids[i]
            j = int(np.searchsorted(g, z[i] + 1e-9, side="right")) - 1
            j = min(max(j, node.lo[i]), node.hi[i])
            params[p.name] = typed(p, self.grids[i][j])
        for j, p in enumerate(self.depth_params):
            params[p.name] = node.depths[j][0]
        for j, p in enumerate(self.kernel_params):
            params[p.name] = _values(p)[node.kernels[j][0]]
        del m
        return params

    # -- bounds ----------------------------------------------------------------------------

    def penalty_bound(self, node: _Node) -> float:
        m = self.models[node.combo]
        lo, hi = [], []
        for s in range(m.num_stages):
            param, fixed = m.stage_depth[s]
            lo.append(fixed if param is None else node.depths[param][0])
            hi.append(fixed if param is None else node.depths[param][-1])
        if self.objective.beta == 0:
            return 0.0
        if self.objective.skip_first_stage_depth and len(lo) > 1:
            lo, hi = lo[1:], hi[1:]
        return self.objective.beta * math.exp(min_std(lo, hi))

    def box(self, node: _Node) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([self.log_grids[i][j] for i, j in enumerate(node.lo)])
        hi = np.array([self.log_grids[i][j] for i, j in enumerate(node.hi)])
        return lo, hi

    def bound(self, node: _Node) -> None:
        lo, hi = self.box(node)
        value, z = self.relaxations[node.combo].solve(node, lo, hi)
        self.nodes += 1
        node.bound = value - self.penalty_bound(node)
        node.z = z

    # -- branching ---------------------------------------------------------------------------

    def branch(self, node: _Node) -> list[_Node]:
        m = self.models[node.combo]
        relax = self.relaxations[node.combo]
        z = node.z if node.z is not None else (self.box(node)[0] + self.box(node)[1]) / 2
        terms = relax.node_terms(node)
        # marginal weight of each group's entropy and each variable's objective gradient
        f_vals = [fv @ z + fc for fv, fc in terms["F"]]
        s_vals = [sv @ z + sc for sv, sc in terms["S"]]
        grad = sum(a * (f * sv + s * fv) for a, f, s, (sv, _), (fv, _) in
                   zip(relax.alpha, f_vals, s_vals, terms["S"], terms["F"], strict=True))
        group_of = self._stage_groups(relax)
        weight = [sum(relax.alpha[g] * f_vals[g] for g in range(group_of[s], len(f_vals)))
                  for s in range(m.num_stages)]
        best: tuple[float, str, int] = (-1.0, "", -1)
        _d_lo, d_hi, _k_lo, k_hi = node.stage_bounds(m)
        for j, cands in enumerate(node.depths):
            if len(cands) > 1:
                impact = 0.0
                for s in range(m.num_stages):
                    if m.stage_depth[s][0] == j:
                        ev, ec = m.parts[(s, 1, relax.variant(s, k_hi))].entropy
                        impact += (cands[-1] - cands[0]) * (ev @ z + ec) * weight[s]
                best = max(best, (impact, "depth", j))
        for j, cands in enumerate(node.kernels):
            if len(cands) > 1:
                impact = 0.0
                for s in range(m.num_stages):
                    if m.stage_kernel[s] == j:
                        for b in (0, 1):
                            hi_e = m.parts[(s, b, cands[-1])].entropy
                            lo_e = m.parts[(s, b, cands[0])].entropy
                            mult = relax.multiplicity(s, b, d_hi)
                            impact += mult * (hi_e[1] - lo_e[1]) * weight[s]
                best = max(best, (impact, "kernel", j))
        lo, hi = self.box(node)
        for i in range(m.n):
            if node.hi[i] > node.lo[i]:
                impact = (hi[i] - lo[i]) * max(abs(float(grad[i])), 1e-6)
                best = max(best, (impact, "size", i))
        _, kind, j = best
        children = []
        if kind == "size":
            lo_i, hi_i = node.lo[j], node.hi[j]
            at = int(np.searchsorted(self.log_grids[j], z[j] + 1e-9, side="right")) - 1
            quarter = (hi_i - lo_i) // 4
            at = min(max(at, lo_i + quarter), hi_i - 1 - quarter)
            for a, b in ((lo_i, at), (at + 1, hi_i)):
                children.append(_Node(node.combo, _replace(node.lo, j, a),
                                      _replace(node.hi, j, b), node.depths, node.kernels))
        elif kind == "depth":
            cands = node.depths[j]
            half = len(cands) // 2
            for part in (cands[:half], cands[half:]):
                children.append(_Node(node.combo, node.lo, node.hi,
                                      _replace(node.depths, j, part), node.kernels))
        else:
            cands = node.kernels[j]
            half = len(cands) // 2
            for part in (cands[:half], cands[half:]):
                children.append(_Node(node.combo, node.lo, node.hi, node.depths,
                                      _replace(node.kernels, j, part)))
        return children

    def _stage_groups(self, relax: _Relaxation) -> list[int]:
        out, g = [], 0
        for i, (s, b) in enumerate(relax.order):
            if 0 <= s < relax.model.num_stages and b == 0:
                out.append(g)
            if i in relax.group_ends:
                g += 1
        return out

    # -- the search --------------------------------------------------------------------------

    def roots(self) -> list[_Node]:
        rules = self.problem.rules
        out = []
        for c, m in enumerate(self.models):
            kernels = []
            for j, p in enumerate(self.kernel_params):
                ok = []
                for idx, k in enumerate(_values(p)):
                    stages = [s for s in range(m.num_stages) if m.stage_kernel[s] == j]
                    sizes = [m.parts[(s, 0, 0)].out_size for s in stages]
                    if all(rules.kernel_ok(int(k), size) for size in sizes):
                        ok.append(idx)
                if not ok:
                    raise InputError(f"no kernel of {p.name} satisfies the design rules")
                kernels.append(tuple(sorted(ok, key=lambda i, p=p: _values(p)[i])))
            depths = tuple(tuple(int(v) for v in _values(p)) for p in self.depth_params)
            lo = tuple(0 for _ in self.sizes)
            hi = tuple(len(g) - 1 for g in self.grids)
            out.append(_Node(c, lo, hi, depths, tuple(kernels)))
        return out

    def run(self) -> tuple[float, str]:
        start = time.perf_counter()
        heap: list[tuple[float, int, _Node]] = []
        counter = itertools.count()
        for root in self.roots():
            self.bound(root)
            if root.z is not None:
                self.local_search(self.round_solution(root, root.z), pairs=True)
            if root.bound > -math.inf:
                heapq.heappush(heap, (-root.bound, next(counter), root))
        closed_bound = -math.inf  # the largest bound of any node closed by the tolerance
        status = "optimal"
        while heap:
            neg, _, node = heapq.heappop(heap)
            lower = self.incumbent.score if self.incumbent else -math.inf
            if -neg <= lower + self._slack(lower):
                closed_bound = max(closed_bound, -neg)
                heap.clear()
                break
            if time.perf_counter() - start > self.time_limit:
                heapq.heappush(heap, (neg, next(counter), node))
                status = "time_limit"
                break
            for child in self.branch(node):
                if child.is_leaf():
                    self.evaluate(self.leaf_params(child))
                    continue
                self.bound(child)
                if child.bound == -math.inf:
                    continue
                if child.z is not None and next(counter) % 7 == 0:
                    self.local_search(self.round_solution(child, child.z), max_steps=15)
                lower = self.incumbent.score if self.incumbent else -math.inf
                if child.bound <= lower:
                    continue
                heapq.heappush(heap, (-child.bound, next(counter), child))
        lower = self.incumbent.score if self.incumbent else -math.inf
        open_bound = max((-item[0] for item in heap), default=-math.inf)
        return max(open_bound, closed_bound, lower), status

    def _slack(self, lower: float) -> float:
        return self.tolerance * abs(lower) + 1e-7 * max(1.0, abs(lower))

    def leaf_params(self, node: _Node) -> dict[str, Value]:
        params: dict[str, Value] = dict(self.combos[node.combo])
        for i, p in enumerate(self.sizes):
            params[p.name] = typed(p, self.grids[i][node.lo[i]])
        for j, p in enumerate(self.depth_params):
            params[p.name] = node.depths[j][0]
        for j, p in enumerate(self.kernel_params):
            params[p.name] = _values(p)[node.kernels[j][0]]
        return params

    # -- sensitivities ------------------------------------------------------------------------

    def shadow_prices(self, best: Evaluation) -> dict[str, dict[str, float]]:
        """Duals of the width program at the design's depths and kernels, with the score
        linearized at the design: d(score)/d(budget)."""
        params = best.params
        c = next(i for i, combo in enumerate(self.combos)
                 if all(params[k] == v for k, v in combo.items()))
        full_lo = tuple(0 for _ in self.sizes)
        full_hi = tuple(len(g) - 1 for g in self.grids)
        depths = tuple((int(params[p.name]),) for p in self.depth_params)
        kernels = tuple((_values(p).index(params[p.name]),) for p in self.kernel_params)
        node = _Node(c, full_lo, full_hi, depths, kernels)
        z0 = np.array([math.log(float(params[p.name])) for p in self.sizes])
        relax = self.relaxations[c]
        lo, hi = self.box(node)
        value, _ = relax.solve(node, lo, hi, tangent_at=z0)
        out: dict[str, dict[str, float]] = {}
        if not math.isfinite(value):
            return out
        for name, con in relax.budget_cons.items():
            dual = float(con.dual_value or 0.0)  # d value / d log(budget)
            limit = relax.budgets[name]
            out[name] = {"per_unit": dual / limit, "per_10_percent": dual * math.log(1.1)}
        if relax.rho_cons is not None and relax.rho0 is not None:
            duals = np.asarray(relax.rho_cons.dual_value, dtype=float).ravel()
            terms = relax.node_terms(node)
            # r_g = L·log(L/ρ0) - const, so dr/dρ0 = -L/ρ0 and d value/dρ0 = Σ μ_g·L/ρ0
            per_unit = float(sum(mu * row[2] / relax.rho0 for mu, row in
                                 zip(duals, terms["rho"], strict=True)))
            out["rho"] = {"per_unit": per_unit, "per_10_percent": per_unit * relax.rho0 * 0.1}
        return out


def _values(p: Parameter) -> list[Value]:
    return list(p.choices) if p.kind == "categorical" else [typed(p, v) for v in grid(p)]


def _replace(items: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*items[:index], value, *items[index + 1:])


# -- the public entry point ------------------------------------------------------------------


def design(space: str | SearchSpace, budgets: Budgets, objective: str | Objective = "deepmad",
           hardware: str | None = None, *, rules: DesignRules | None = None,
           tolerance: float = 0.005, time_limit: float = 60.0,
           fixed: dict[str, Any] | None = None) -> Design:
    """The best design of ``space`` within ``budgets``, with a certified upper bound.

    ``tolerance``: stop once the bound is within this fraction of the incumbent (0: prove
    optimality). ``fixed``: space parameters held at given values (e.g. resolution).
    ``hardware``: a profile name; with ``budgets.latency_ms`` the latency is enforced
    exactly on every design (the relaxation does not model it yet, so the bound ignores it).
    """
    start = time.perf_counter()
    if isinstance(space, str):
        space = get_space(space)
    if isinstance(objective, str):
        objective = get_objective(objective)
    problem = Problem(space, budgets, objective, hardware, rules)
    solver = _Solver(problem, tolerance, time_limit, dict(fixed or {}))
    upper, status = solver.run()
    best = solver.incumbent
    if best is None:
        raise InputError(_infeasible_message(problem, solver))
    gap = (upper - best.score) / abs(best.score) if best.score else math.inf
    notes = []
    if budgets.latency_ms is not None:
        notes.append("latency is enforced exactly on designs but not modeled in the "
                     "relaxation: the upper bound ignores the latency budget")
    if budgets.peak_activation_bytes is not None:
        notes.append("peak activation memory is enforced exactly on designs but not modeled "
                     "in the relaxation: the upper bound ignores it")
    binding = [name for name, limit in budgets.items().items()
               if best.usage[name] >= 0.99 * limit]
    result = Design(best.spec, best.params, best.score, upper, max(gap, 0.0), best.figures,
                    budgets, binding, solver.shadow_prices(best),
                    time.perf_counter() - start, solver.nodes, status, objective.name, notes)
    logger.info("design: score %.2f, bound %.2f, gap %.3f%%, %d nodes, %.1fs", result.score,
                upper, 100 * result.gap, solver.nodes, result.seconds)
    return result


def _infeasible_message(problem: Problem, solver: _Solver) -> str:
    space = problem.space
    smallest = {p.name: (_values(p)[0] if p.name not in solver.fixed else solver.fixed[p.name])
                for p in space.parameters}
    figures = problem.figures(space.decode(smallest))
    parts = ", ".join(f"{k} {figures[k]:.4g}" for k in problem.budgets.items())
    return (f"no design of space {space.name!r} fits the budgets "
            f"{problem.budgets.items()}; the smallest network of the space costs {parts}")
