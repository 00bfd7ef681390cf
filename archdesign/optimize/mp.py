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
import warnings
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

# Relative widening of a relaxation optimum the solver reports as inaccurate.
_INACCURATE_MARGIN = 1e-3

_ZERO_LOG = -60.0  # log-coefficient of a monomial absent from a node (exp(-60) ~ 1e-26)


@dataclass
class Design:
    """The MP designer's answer."""

    spec: ArchSpec
    params: dict[str, Value]  # the space assignment (to_dict: "assignment")
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
            "assignment": self.params, "notes": self.notes, "spec": self.spec.to_dict(),
        }


# -- the convex relaxation -----------------------------------------------------------------


class _Relaxation:
    """One compiled cvxpy program for a model; nodes only change its parameters.

    Variables: z (log widths/expansions), σ_j = log(d_j − 1) for every depth parameter
    (stages with d = 1 drop their repeated block), E_s >= the entropy of stage s's
    repeated blocks, t_g >= α-less group terms, Lv_g >= conv counts.
    """

    def __init__(self, model: Model, budgets: Budgets, objective: DeepMAD,
                 rules: DesignRules) -> None:
        self.model = model
        self.objective = objective
        n, ns = model.n, model.num_stages
        self.np_ = len(model.depth_params)
        self.budgets = {name: limit for name, limit in budgets.items().items()
                        if name in COSTS}
        self.rho0 = budgets.rho
        self.order = self._part_order()
        self.group_ends = self._groups()
        g = len(self.group_ends)
        self.alpha = np.array(objective.alpha_for(g))
        self.select = np.zeros((ns, max(self.np_, 1)))  # stage -> its σ
        for s in range(ns):
            j = model.stage_depth[s][0]
            if j is not None:
                self.select[s, j] = 1.0
        # unique monomials (exponents over z, σ index or -1) per budgeted cost
        self.rows: dict[str, list[tuple[tuple[float, ...], int]]] = {}
        self.coefs: dict[str, dict[tuple[tuple[int, int, int], int], np.ndarray]] = {}
        for name in self.budgets:
            rows: dict[tuple[tuple[float, ...], int], int] = {}
            uses = []
            for key, part in model.parts.items():
                sigmas = [-1]
                governing = model.stage_depth[key[0]][0] if 0 <= key[0] < ns else None
                if key[1] == 1 and governing is not None:
                    sigmas.append(governing)
                for j in sigmas:
                    uses.append((key, j))
                    for m in part.costs[name]:
                        rows.setdefault((m.exps, j), len(rows))
            self.rows[name] = list(rows)
            self.coefs[name] = {}
            for key, j in uses:
                vec = np.zeros(len(rows))
                for m in model.parts[key].costs[name]:
                    vec[rows[(m.exps, j)]] += m.coef
                self.coefs[name][(key, j)] = vec
        p = max(self.np_, 1)
        self.z = cp.Variable(n)
        self.sigma = cp.Variable(p)
        self.e = cp.Variable(ns)
        self.t = cp.Variable(g)
        self.lo, self.hi = cp.Parameter(n), cp.Parameter(n)
        self.slo, self.shi = cp.Parameter(p), cp.Parameter(p)
        self.log_coef = {name: cp.Parameter(len(self.rows[name])) for name in self.budgets}
        self.r_vec, self.r_const = cp.Parameter((ns, n)), cp.Parameter(ns)
        self.sec_a, self.sec_b = cp.Parameter(ns), cp.Parameter(ns, nonneg=True)
        self.mc = [(cp.Parameter((ns, n)), cp.Parameter((ns, p)), cp.Parameter(ns))
                   for _ in range(2)]
        self.plane = [(cp.Parameter((g, n)), cp.Parameter((g, ns)), cp.Parameter(g))
                      for _ in range(2)]
        cons: list[Any] = [self.z >= self.lo, self.z <= self.hi,
                           self.sigma >= self.slo, self.sigma <= self.shi]
        self.budget_cons = {}
        for name, limit in self.budgets.items():
            a = np.array([list(ex) + [1.0 * (j == k) for k in range(p)]
                          for ex, j in self.rows[name]])
            zs = cp.hstack([self.z, self.sigma])
            self.budget_cons[name] = cp.log_sum_exp(a @ zs + self.log_coef[name]) \
                <= math.log(limit)
            cons.append(self.budget_cons[name])
        # E_s <= exp-secant of exp(σ + log r_s(z)), and two McCormick planes of D·r
        # (ℓ <= log r(z) keeps the program DPP: a parameter may not multiply log(param·z))
        self.log_r = cp.Variable(ns)
        cons.append(self.log_r <= cp.log(self.r_vec @ self.z + self.r_const))
        cons.append(self.e <= self.sec_a + cp.multiply(
            self.sec_b, self.select @ self.sigma + self.log_r))
        for mz, ms, mc in self.mc:
            cons.append(self.e <= mz @ self.z + ms @ self.sigma + mc)
        self.rho_cons = None
        if self.rho0 is not None:
            self.s_z, self.s_e = cp.Parameter((g, n)), cp.Parameter((g, ns))
            self.s_c = cp.Parameter(g)
            self.l_mat, self.l_c = cp.Parameter((g, p), nonneg=True), cp.Parameter(g)
            self.lv = cp.Variable(g)
            cons.append(self.lv >= self.l_c + self.l_mat @ cp.exp(self.sigma))
            cons.append(self.lv >= 1)
            self.rho_cons = 2 * (self.s_z @ self.z + self.s_e @ self.e + self.s_c) \
                >= cp.rel_entr(self.lv, self.rho0 * np.ones(g))
            cons.append(self.rho_cons)
        if rules.monotone_widths:
            idx = [w for w in model.stage_width if w is not None]
            cons.extend(self.z[a] <= self.z[b] for a, b in itertools.pairwise(idx) if a != b)
        for pz, pe, pc in self.plane:
            cons.append(self.t <= pz @ self.z + pe @ self.e + pc)
        self.problem = cp.Problem(cp.Maximize(self.alpha @ self.t), cons)

    # -- structure ----------------------------------------------------------------------

    def _part_order(self) -> list[tuple[int, int]]:
        order = [(-1, 0)]
        for s in range(self.model.num_stages):
            order.append((s, 0))
            if (s, 1, 0) in self.model.parts:  # absent when the stage's depth is fixed at 1
                order.append((s, 1))
        return [*order, (self.model.num_stages, 0)]

    def _groups(self) -> list[int]:
        """Index into ``order`` of the last part of every group."""
        ends = []
        for i, (s, b) in enumerate(self.order):
            if 0 <= s < self.model.num_stages and b == 0 and \
                    self.model.parts[(s, 0, 0)].downsamples:
                ends.append(i - 1)
        return [*ends, len(self.order) - 1]

    def variant(self, stage: int, kernels: dict[int, int]) -> int:
        if 0 <= stage < self.model.num_stages and self.model.stage_kernel[stage] is not None:
            return kernels[stage]
        return 0

    def repeat(self, node: _Node, stage: int) -> tuple[str, float, float]:
        """How stage's repeated block enters: ("none"|"fixed"|"var", D_lo, D_hi), D=d−1."""
        param, fixed = self.model.stage_depth[stage]
        if param is None:
            return ("fixed", fixed - 1.0, fixed - 1.0) if fixed > 1 else ("none", 0.0, 0.0)
        cands = node.depths[param]
        if cands[-1] == 1:
            return ("none", 0.0, 0.0)
        if cands[0] == 1:
            raise ValueError("depth candidates {1, 2, ...} must be split before relaxing")
        return ("var", cands[0] - 1.0, cands[-1] - 1.0)

    def relaxable(self, node: _Node) -> bool:
        return all(not (c[0] == 1 and len(c) > 1) for c in node.depths)

    # -- node data -----------------------------------------------------------------------

    def node_terms(self, node: _Node, lo: np.ndarray, hi: np.ndarray) -> dict[str, Any]:
        """The node's affine forms, interval bounds and cost coefficients."""
        m = self.model
        _, _, k_lo, k_hi = node.stage_bounds(m)
        n, ns = m.n, m.num_stages
        s_vec, s_const = np.zeros(n), 0.0
        e_ind = np.zeros(ns)
        convs = 0.0
        l_sig = np.zeros(max(self.np_, 1))
        groups: list[dict[str, Any]] = []
        ends = set(self.group_ends)
        last_out = (np.zeros(n), 0.0, 1)
        rep: dict[int, tuple[str, float, float]] = {}
        r_terms: dict[int, tuple[np.ndarray, float]] = {}
        for i, (s, b) in enumerate(self.order):
            part = m.parts[(s, b, self.variant(s, k_hi))]
            in_stage = 0 <= s < ns
            if in_stage and b == 1:
                rep[s] = mode = self.repeat(node, s)
                if mode[0] == "fixed":
                    s_vec = s_vec + mode[1] * part.entropy[0]
                    s_const += mode[1] * part.entropy[1]
                    convs += mode[1] * part.convs
                elif mode[0] == "var":
                    e_ind[s] = 1.0
                    r_terms[s] = part.entropy
                    j = m.stage_depth[s][0]
                    assert j is not None
                    l_sig[j] += part.convs
            else:
                s_vec = s_vec + part.entropy[0]
                s_const += part.entropy[1]
                convs += part.convs
            if (in_stage and b == 0) or (s == ns and part.convs):
                last_out = (*part.out_channels, part.out_size if in_stage else last_out[2])
            if i in ends:
                vec, const, size = last_out
                groups.append({"s": (s_vec.copy(), s_const, e_ind.copy()),
                               "f": (vec, const + 2 * math.log(size)),
                               "l": (convs, l_sig.copy())})
        coefs = {}
        for name in self.budgets:
            total = np.zeros(len(self.rows[name]))
            for s, b in self.order:
                in_stage = 0 <= s < ns
                key = (s, b, self.variant(s, k_lo))
                if in_stage and b == 1:
                    mode = rep[s]
                    if mode[0] == "fixed":
                        total += mode[1] * self.coefs[name][(key, -1)]
                    elif mode[0] == "var":
                        param = m.stage_depth[s][0]
                        assert param is not None
                        total += self.coefs[name][(key, param)]
                else:
                    total += self.coefs[name][(key, -1)]
            coefs[name] = total
        # bounds of every repeated-block entropy E_s = D_s·r_s(z)
        e_lo, e_hi = np.zeros(ns), np.zeros(ns)
        r_lohi = {}
        for s, (vec, const) in r_terms.items():
            r_lo, r_hi = _interval(vec, const, lo, hi)
            r_lohi[s] = (r_lo, r_hi)
            e_lo[s], e_hi[s] = rep[s][1] * r_lo, rep[s][2] * r_hi
        for grp in groups:
            sv, sc, ind = grp["s"]
            s_low, s_high = _interval(sv, sc, lo, hi)
            grp["s_bounds"] = (s_low + float(ind @ e_lo), s_high + float(ind @ e_hi))
            grp["f_bounds"] = _interval(grp["f"][0], grp["f"][1], lo, hi)
        return {"groups": groups, "coefs": coefs, "rep": rep, "r": r_terms, "r_lohi": r_lohi}

    def solve(self, node: _Node, lo: np.ndarray, hi: np.ndarray,
              tangent_at: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[float, np.ndarray | None, dict[str, Any]]:
        """The node's bound on Σα·F·S (without the depth penalty), its solution and data."""
        m = self.model
        n, ns, p = m.n, m.num_stages, max(self.np_, 1)
        terms = self.node_terms(node, lo, hi)
        self.lo.value, self.hi.value = lo, hi
        slo, shi = np.zeros(p), np.zeros(p)
        for j, cands in enumerate(node.depths):
            if cands[0] >= 2:
                slo[j], shi[j] = math.log(cands[0] - 1), math.log(cands[-1] - 1)
        self.slo.value, self.shi.value = slo, shi
        for name, total in terms["coefs"].items():
            logs = np.where(total > 0, np.log(np.maximum(total, 1e-300)), _ZERO_LOG)
            self.log_coef[name].value = logs
        r_vec, r_const = np.zeros((ns, n)), np.ones(ns)
        sec_a, sec_b = np.zeros(ns), np.zeros(ns)
        mc = [(np.zeros((ns, n)), np.zeros((ns, p)), np.zeros(ns)) for _ in range(2)]
        for s, (vec, const) in terms["r"].items():
            _, d_lo, d_hi = terms["rep"][s]
            r_lo, r_hi = terms["r_lohi"][s]
            r_vec[s], r_const[s] = vec, const
            u_lo, u_hi = math.log(d_lo * r_lo), math.log(d_hi * r_hi)
            if u_hi - u_lo > 1e-12:
                slope = (math.exp(u_hi) - math.exp(u_lo)) / (u_hi - u_lo)
            else:
                slope = math.exp(u_lo)
            sec_a[s], sec_b[s] = math.exp(u_lo) - slope * u_lo, slope
            j = m.stage_depth[s][0]
            assert j is not None
            s_lo, s_hi = math.log(d_lo), math.log(d_hi)
            slope_d = (d_hi - d_lo) / (s_hi - s_lo) if s_hi > s_lo else 0.0
            # D <= D_lo + slope_d·(σ − σ_lo); E <= D_b·r + r_b'·D − D_b·r_b'
            for (mz, ms, mcst), (d_b, r_b) in zip(mc, ((d_hi, r_lo), (d_lo, r_hi)),
                                                 strict=True):
                mz[s] = d_b * vec
                ms[s, j] = r_b * slope_d
                mcst[s] = d_b * const + r_b * (d_lo - slope_d * s_lo) - d_b * r_b
        self.r_vec.value, self.r_const.value = r_vec, r_const
        self.sec_a.value, self.sec_b.value = sec_a, sec_b
        for (param_z, param_s, param_c), (vz, vs, vc) in zip(self.mc, mc, strict=True):
            param_z.value, param_s.value, param_c.value = vz, vs, vc
        g = len(terms["groups"])
        planes = [(np.zeros((g, n)), np.zeros((g, ns)), np.zeros(g)) for _ in range(2)]
        for i, grp in enumerate(terms["groups"]):
            sv, sc, ind = grp["s"]
            fv, fc = grp["f"]
            if tangent_at is not None:
                z0, e0 = tangent_at
                s0, f0 = sv @ z0 + ind @ e0 + sc, fv @ z0 + fc
                pairs = [(f0, s0), (f0, s0)]
            else:
                (s_lo, s_hi), (f_lo, f_hi) = grp["s_bounds"], grp["f_bounds"]
                pairs = [(f_hi, s_lo), (f_lo, s_hi)]
            # F·S <= F_b·S + S_b·F − F_b·S_b
            for (pz, pe, pc), (f_b, s_b) in zip(planes, pairs, strict=True):
                pz[i] = f_b * sv + s_b * fv
                pe[i] = f_b * ind
                pc[i] = f_b * sc + s_b * fc - f_b * s_b
        for (param_z, param_e, param_c), (vz, ve, vc) in zip(self.plane, planes, strict=True):
            param_z.value, param_e.value, param_c.value = vz, ve, vc
        if self.rho0 is not None:
            self.s_z.value = np.array([grp["s"][0] for grp in terms["groups"]])
            self.s_e.value = np.array([grp["s"][2] for grp in terms["groups"]])
            self.s_c.value = np.array([grp["s"][1] for grp in terms["groups"]])
            self.l_mat.value = np.array([grp["l"][1] for grp in terms["groups"]])
            self.l_c.value = np.array([grp["l"][0] for grp in terms["groups"]])
        try:
            with warnings.catch_warnings():  # inaccurate statuses are handled below
                warnings.simplefilter("ignore", UserWarning)
                self.problem.solve(solver=cp.CLARABEL)
        except cp.error.SolverError:
            logger.debug("relaxation solver failure")
            return math.inf, None, terms
        status = self.problem.status
        if status == "infeasible":
            return -math.inf, None, terms
        # An inaccurate answer must not prune: "infeasible_inaccurate" keeps the node open
        # and an inaccurate optimum is widened so the bound stays an over-estimate.
        if status not in ("optimal", "optimal_inaccurate") or self.z.value is None:
            return math.inf, None, terms
        value = float(self.problem.value)
        if status == "optimal_inaccurate":
            value += _INACCURATE_MARGIN * max(1.0, abs(value))
        terms["sigma"] = np.array(self.sigma.value)
        terms["e"] = np.array(self.e.value)
        return value, np.array(self.z.value), terms


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
    terms: dict[str, Any] | None = None

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
        sigma = node.terms.get("sigma") if node.terms else None
        for j, p in enumerate(self.depth_params):
            cands = node.depths[j]
            d_star = math.exp(float(sigma[j])) + 1 if sigma is not None and cands[0] > 1 \
                else cands[0]
            params[p.name] = max([c for c in cands if c <= d_star + 1e-6] or [cands[0]])
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

    def bound(self, node: _Node, parent_bound: float = math.inf) -> None:
        relax = self.relaxations[node.combo]
        if not relax.relaxable(node):  # depth {1, 2, ...}: split before relaxing
            node.bound, node.z, node.terms = parent_bound, None, None
            return
        lo, hi = self.box(node)
        value, z, terms = relax.solve(node, lo, hi)
        self.nodes += 1
        node.bound = min(value - self.penalty_bound(node), parent_bound)
        node.z, node.terms = z, terms

    # -- branching ---------------------------------------------------------------------------

    def branch(self, node: _Node) -> list[_Node]:
        m = self.models[node.combo]
        relax = self.relaxations[node.combo]
        for j, cands in enumerate(node.depths):  # d = 1 drops a block: split it off first
            if cands[0] == 1 and len(cands) > 1:
                return [_Node(node.combo, node.lo, node.hi, _replace(node.depths, j, part),
                              node.kernels) for part in (cands[:1], cands[1:])]
        lo, hi = self.box(node)
        z = node.z if node.z is not None else (lo + hi) / 2
        terms = node.terms if node.terms is not None else relax.node_terms(node, lo, hi)
        e_star = terms.get("e", np.zeros(m.num_stages))
        sigma = terms.get("sigma", np.zeros(max(relax.np_, 1)))
        groups = terms["groups"]
        f_vals = [grp["f"][0] @ z + grp["f"][1] for grp in groups]
        s_vals = [grp["s"][0] @ z + grp["s"][1] + grp["s"][2] @ e_star for grp in groups]
        grad = sum(a * (f * grp["s"][0] + sv * grp["f"][0]) for a, f, sv, grp in
                   zip(relax.alpha, f_vals, s_vals, groups, strict=True))
        group_of = self._stage_groups(relax)
        weight = [sum(relax.alpha[g] * f_vals[g] for g in range(group_of[s], len(f_vals)))
                  for s in range(m.num_stages)]
        best: tuple[float, str, int] = (-1.0, "", -1)
        _d_lo, d_hi, _k_lo, _k_hi = node.stage_bounds(m)
        for j, cands in enumerate(node.depths):
            if len(cands) > 1:
                impact = 1e-9 * (cands[-1] - cands[0])
                for s, (vec, const) in terms["r"].items():
                    if m.stage_depth[s][0] == j:  # the entropy the secants over-count
                        exact = math.exp(float(sigma[j])) * (vec @ z + const)
                        impact += max(float(e_star[s]) - exact, 0.0) * weight[s]
                best = max(best, (impact, "depth", j))
        for j, cands in enumerate(node.kernels):
            if len(cands) > 1:
                impact = 0.0
                for s in range(m.num_stages):
                    if m.stage_kernel[s] == j:
                        for b in (0, 1):
                            if (s, b, cands[-1]) not in m.parts:  # depth fixed at 1
                                continue
                            hi_e = m.parts[(s, b, cands[-1])].entropy
                            lo_e = m.parts[(s, b, cands[0])].entropy
                            mult = 1 if b == 0 else d_hi[s] - 1
                            impact += mult * (hi_e[1] - lo_e[1]) * weight[s]
                best = max(best, (impact, "kernel", j))
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
            d_star = math.exp(float(sigma[j])) + 1
            half = sum(1 for c in cands if c <= d_star)
            quarter = len(cands) // 4
            half = min(max(half, max(quarter, 1)), len(cands) - max(quarter, 1))
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
        excluded = []
        for c, m in enumerate(self.models):
            kernels = []
            for j, p in enumerate(self.kernel_params):
                ok = []
                for idx, k in enumerate(_values(p)):
                    stages = [s for s in range(m.num_stages) if m.stage_kernel[s] == j]
                    sizes = [m.parts[(s, 0, 0)].out_size for s in stages]
                    if all(rules.kernel_ok(int(k), size) for size in sizes):
                        ok.append(idx)
                if not ok:  # e.g. a resolution whose last feature maps are too small
                    excluded.append(f"{p.name} at {self.combos[c]}")
                    break
                order = _values(p)
                kernels.append(tuple(sorted(ok, key=lambda i: float(order[i]))))
            if len(kernels) < len(self.kernel_params):
                continue
            depths = tuple(tuple(int(v) for v in _values(p)) for p in self.depth_params)
            lo = tuple(0 for _ in self.sizes)
            hi = tuple(len(g) - 1 for g in self.grids)
            out.append(_Node(c, lo, hi, depths, tuple(kernels)))
        if not out:
            raise InputError(f"no kernel satisfies the design rules (kernel <= feature map / "
                             f"1.5) for: {'; '.join(excluded)}")
        if excluded:
            logger.info("design rules exclude %s", "; ".join(excluded))
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
                self.bound(child, node.bound)
                if child.bound == -math.inf:
                    continue
                if child.z is not None:  # a cheap incumbent at every node, a search sometimes
                    start_point = self.round_solution(child, child.z)
                    if next(counter) % 25 == 0:
                        self.local_search(start_point, max_steps=10)
                    else:
                        self.evaluate(start_point)
                lower = self.incumbent.score if self.incumbent else -math.inf
                if child.bound <= lower:
                    continue
                heapq.heappush(heap, (-child.bound, next(counter), child))
        if self.incumbent is not None:  # polish the incumbent with paired moves
            self.local_search(self.incumbent.params, max_steps=30, pairs=True)
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
        terms = relax.node_terms(node, lo, hi)
        e0 = np.zeros(relax.model.num_stages)
        for s, (vec, const) in terms["r"].items():
            e0[s] = terms["rep"][s][1] * (vec @ z0 + const)
        value, _, terms = relax.solve(node, lo, hi, tangent_at=(z0, e0))
        out: dict[str, dict[str, float]] = {}
        if not math.isfinite(value):
            return out
        for name, con in relax.budget_cons.items():
            dual = float(con.dual_value or 0.0)  # d value / d log(budget)
            limit = relax.budgets[name]
            out[name] = {"per_unit": dual / limit, "per_10_percent": dual * math.log(1.1)}
        if relax.rho_cons is not None and relax.rho0 is not None:
            duals = np.asarray(relax.rho_cons.dual_value, dtype=float).ravel()
            # rel_entr(L, ρ0) = L·log(L/ρ0): d/dρ0 = −L/ρ0, so d value/dρ0 = Σ μ_g·L_g/ρ0
            counts = np.asarray(relax.lv.value, dtype=float).ravel()
            per_unit = float(np.sum(duals * counts) / relax.rho0)
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
