"""The MP's node relaxation: each stage's depth and kernel choice relaxed to a convex hull.

A stage's blocks are its first block (at kernel k) and d−1 repeated blocks (at kernel k).
Each choice is an *option* with a weight y_o ∈ [0, 1] and its own copy x_o of the log-size
variables its blocks read (the stage's width and expansion, and the previous stage's
width for the first block), with y_o·lo ≤ x_o ≤ y_o·hi. Per stage, the first-block
weights sum to 1, the repeated-block weights of kernel k sum to the first-block weight of
k, and each kind's copies sum to z. A block whose input width may equal another width it
reads is another block then (``Model.ties``: a stride-1 first block without the projection
shortcut, an inverted residual without the expansion conv when its hidden width is its
input width): its kind has an option per combination of its ties that can hold, whose
copy has the tied widths equal (an equality row on x, both slots in the range the box
leaves to both). The tied repeated blocks of a (stage, kernel) are a family of their
own, with their own aggregated weight D below; with the untied ones they sum to the
stage's first-block weight of the kernel, as before (depth 1, no repeated block, is one
option whatever the widths). A node decides a tie (only the options that agree with it
stay), and a box that holds the two widths at one value allows only the tied options.
Then:

- a first-block cost monomial c·exp(a·z) enters as its perspective y_o·c·exp(a·x_o/y_o),
  an exponential cone; the repeated blocks of (stage, kernel, ties) enter as the perspective
  D·c·exp(a·u/D) with D = Σ_d (d−1)·y_d and u = Σ_d (d−1)·x_d (by Jensen this is at most
  the sum of the options' own perspectives, so it relaxes their hull, and it is exact at
  every integral point). A cost budget is the sum of those and the stem's and head's
  monomials, ≤ B: convex. The roofline latency is the same with each fused kernel's
  max(compute, memory[, overhead]) as an epigraph variable over such sums; peak activation
  memory bounds each live set of each block (perspective, per option) by the budget;
- a stage's entropy Σ ½log(c·k²/g) and conv count are linear in (x, y); its depth is
  Σ_d d·y_d;
- ρ ≤ ρ0 is 2·S_g ≥ L_g·log(L_g/ρ0) per group prefix (S and L linear): convex;
- a ratio constraint of the space, low <= value_i / value_j <= high (a bottleneck width
  between a tenth of its stage's width and the width), is linear in z;
- the depth penalty β·exp(std of the depths) is convex in the depths: subtracted exactly;
- the score Σ_g α_g·F_g·S_g (F_g = log C_g + log r_g², affine in z) is bounded above by
  the two McCormick planes of each F·S over the node's box.

At an integral point (every y ∈ {0, 1}) the program is exact: the bound of a node that
holds one design is that design's score. Exact for every point the model has (tied
variants included), whatever the order of the stage widths (the groups, F and the planes
need no monotone widths). A hidden width set by an expansion factor of 1 (hidden = input ×
1, a tie of a size to a constant, not to another size) is not a tie: the model refuses
such spaces (:class:`~archdesign.optimize.posynomial.ModelingError`).

Pairing the largest depth's entropy with the smallest depth's cost, as a plain interval
relaxation does, left 25-58% gaps on the ResNet problems; the hull closes most of that at
the root. The program is compiled once per model (DPP); a node changes parameters only:
the box, the allowed options, the planes.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from archdesign.cost import dtype_bytes
from archdesign.errors import InputError
from archdesign.hardware.models import RooflineModel
from archdesign.objectives import DeepMAD
from archdesign.objectives.deepmad import effectiveness
from archdesign.objectives.deepmad import groups as deepmad_groups
from archdesign.optimize.posynomial import (
    COSTS,
    LatencyTerms,
    Model,
    ModelingError,
    Monomial,
    Tie,
    components,
    model_costs,
    param_values,
    part_block,
    peak_terms,
    sample_points,
    used_variables,
)
from archdesign.optimize.problem import Budgets, DesignRules
from archdesign.spaces import SearchSpace

# Clarabel's tolerances: a node's bound needs ~1e-5 relative accuracy, not 1e-8, and the
# looser setting saves about a third of the iterations. Every bound is widened by
# BOUND_MARGIN (10x the gap tolerance) so it stays an over-estimate.
SOLVER_SETTINGS = {"tol_gap_abs": 1e-6, "tol_gap_rel": 1e-6, "tol_feas": 1e-7}
BOUND_MARGIN = 1e-5
# Relative widening of a relaxation optimum the solver reports as inaccurate.
INACCURATE_MARGIN = 1e-3


# A block as a budget reads it: kernels (each a list of alternative posynomials, costing
# their maximum) and a constant.
Block = tuple[list[list[list[Monomial]]], float]


@dataclass(frozen=True, slots=True)
class Option:
    """One choice for one stage: its first block at a kernel (``repeat`` False), or its
    d−1 repeated blocks at a (depth, kernel) (``repeat`` True)."""

    stage: int
    repeat: bool
    depth: int
    kernel: int  # index into the stage's kernel parameter's choices (0 without one)
    offset: int  # where its copy of the stage's variables starts in x
    support: tuple[int, ...]  # the z indices it copies
    mask: int = 0  # which ties of its block kind hold (``Model.block_ties``): its copy ties

    @property
    def multiplier(self) -> int:
        return self.depth - 1 if self.repeat else 1

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.stage, part_block(int(self.repeat), self.mask), self.kernel)


@dataclass
class NodeBox:
    """What a node fixes: a box on z and the depth and kernel candidates it allows."""

    lo: np.ndarray
    hi: np.ndarray
    depths: tuple[tuple[int, ...], ...]  # candidate values of every depth parameter
    kernels: tuple[tuple[int, ...], ...]  # candidate choice indices of every kernel param
    ties: dict[Tie, bool] = field(default_factory=dict)  # the ties decided: equal or not
    # the options it allows (HullRelaxation.allowed, computed once per box)
    allowed: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class Solution:
    value: float  # the node's upper bound (depth penalty included)
    z: np.ndarray
    weights: np.ndarray  # y, per option
    depth: np.ndarray  # Σ d·y per stage
    copies: np.ndarray  # x


class HullRelaxation:
    """One compiled cvxpy program for a model; nodes change its parameters only."""

    def __init__(self, model: Model, budgets: Budgets, objective: DeepMAD,
                 rules: DesignRules,
                 latency: tuple[RooflineModel, dict[tuple[int, int, int], LatencyTerms]]
                 | None = None) -> None:
        self.model = m = model
        n, ns = m.n, m.num_stages
        self.latency = latency
        modeled = (*COSTS, "peak_activation_bytes",
                   *(("latency_ms",) if latency is not None else ()))
        self.limits = {k: v for k, v in budgets.items().items() if k in modeled}
        self.bytes_per_element = budgets.batch * dtype_bytes(budgets.dtype)
        self.peak_cons: list[tuple[Any, Any]] = []
        self.rho0 = budgets.rho
        self.objective = objective
        self.options: list[Option] = []
        offset = 0
        for s in range(ns):
            for repeat in (False, True):
                keys = [k for k in m.parts if k[0] == s and k[1] % 2 == repeat]
                if not keys:  # a stage of fixed depth 1 has no repeated block
                    continue
                used = set().union(*(used_variables(m.parts[k]) for k in keys))
                flat = tuple(sorted(used.union(*(t.pair for t in m.block_ties(s, repeat)))))
                masks = sorted({k[1] // 2 for k in keys})
                for d in (self.stage_depths(s) if repeat else [1]):
                    for v in self.stage_kernels(s):
                        # no blocks repeated (depth 1): no ties either
                        for mask in masks if d > 1 or not repeat else [0]:
                            if (s, part_block(repeat, mask), v) in m.parts:
                                self.options.append(Option(s, repeat, d, v, offset, flat,
                                                           mask))
                                offset += len(flat)
        self.nx, self.no = max(offset, 1), len(self.options)
        self._index_options()
        # the options that share cone rows: each first block alone, and the repeated blocks
        # of a (stage, kernel, ties) together (weighted by their block counts)
        grouped: dict[tuple[int, int, int], list[int]] = {}
        for k, o in enumerate(self.options):
            grouped.setdefault(o.key if o.repeat else (-1, k, 0), []).append(k)
        self.option_groups = list(grouped.values())
        self.groups = self._groups()
        g = len(self.groups)
        self.alpha = np.array(objective.alpha_for(g))
        # score units: the relaxation works in thousandths of the score (conditioning)
        self.scale = 1e-3

        z = self.z = cp.Variable(n)
        x = self.x = cp.Variable(self.nx)
        y = self.y = cp.Variable(self.no, nonneg=True)
        self.t = cp.Variable(g)
        self.lo, self.hi = cp.Parameter(n), cp.Parameter(n)
        self.slot_lo, self.slot_hi = cp.Parameter(self.nx), cp.Parameter(self.nx)
        self.allowed = cp.Parameter(self.no, nonneg=True)
        slots = [(o.offset + i, k, 1.0) for k, o in enumerate(self.options)
                 for i in range(len(o.support))]
        slot_option = _matrix(slots, (self.nx, self.no))
        y_slot = slot_option @ y
        cons: list[Any] = [z >= self.lo, z <= self.hi, y <= self.allowed,
                           x >= cp.multiply(self.slot_lo, y_slot),
                           x <= cp.multiply(self.slot_hi, y_slot)]
        # per stage: first-block weights sum to one, repeated-block weights of a kernel sum
        # to that kernel's first-block weight, and each kind's copies sum to z
        links: list[tuple[int, int, float]] = []
        rhs: list[float] = []
        for s in range(ns):
            first = [k for k, o in enumerate(self.options) if o.stage == s and not o.repeat]
            links.extend((len(rhs), k, 1.0) for k in first)
            rhs.append(1.0)
            for v in self.stage_kernels(s):
                rep = [k for k, o in enumerate(self.options)
                       if o.stage == s and o.repeat and o.kernel == v]
                if rep:
                    row = len(rhs)
                    links.extend((row, k, 1.0) for k in rep)
                    links.extend((row, k, -1.0) for k in first if self.options[k].kernel == v)
                    rhs.append(0.0)
        cons.append(_matrix(links, (len(rhs), self.no)) @ y == np.array(rhs))
        agg: list[tuple[int, int, float]] = []
        sel: list[tuple[int, int, float]] = []
        row = 0
        for s in range(ns):
            for repeat in (False, True):
                opts = [o for o in self.options if o.stage == s and o.repeat == repeat]
                if not opts:
                    continue
                for i, var in enumerate(opts[0].support):
                    agg.extend((row, o.offset + i, 1.0) for o in opts)
                    sel.append((row, var, 1.0))
                    row += 1
        if row:
            cons.append(_matrix(agg, (row, self.nx)) @ x == _matrix(sel, (row, n)) @ z)
        # a tied option's copy has the tied widths equal
        ties: list[tuple[int, int, float]] = []
        for o in self.options:
            for i, j in self.held(o):
                r = len(ties) // 2
                ties += [(r, o.offset + o.support.index(i), 1.0),
                         (r, o.offset + o.support.index(j), -1.0)]
        if ties:
            cons.append(_matrix(ties, (len(ties) // 2, self.nx)) @ x == 0)
        self.budget_cons: dict[str, Any] = {}
        self.cone_rows = _ConeRows(self)
        for name in self.limits:
            cons.extend(self._peak_budget() if name == "peak_activation_bytes"
                        else self._budget(name))
        # entropy, conv counts and depths as linear forms
        ent_x, ent_y, ent_z, ent_c, conv_y, conv_c = self._linear_forms()
        self.entropy_forms = (ent_x, ent_y, ent_z, ent_c)
        self.conv_forms = (conv_y, conv_c)
        s_all = ent_x @ x + ent_y @ y + ent_z @ z + ent_c
        self.rho_cons = None
        if self.rho0 is not None:
            self.rho_cons = 2 * s_all >= cp.rel_entr(conv_y @ y + conv_c,
                                                     self.rho0 * np.ones(g))
            cons.append(self.rho_cons)
        if rules.monotone_widths:
            idx = [w for w in m.stage_width if w is not None]
            cons.extend(z[a] <= z[b] for a, b in itertools.pairwise(idx) if a != b)
        # the space's ratio constraints: low <= value_i / value_j <= high, linear in z
        for i, j, log_low, log_high in m.ratios:
            if math.isfinite(log_low):
                cons.append(z[i] - z[j] >= log_low)
            if math.isfinite(log_high):
                cons.append(z[i] - z[j] <= log_high)
        # two planes over-estimating each F_g·S_g (scaled): t <= pf·S + ps·F − pc
        self.planes = [(cp.Parameter(g), cp.Parameter(g), cp.Parameter(g)) for _ in range(2)]
        f_vec = np.array([grp["f"][0] for grp in self.groups])
        f_const = np.array([grp["f"][1] for grp in self.groups])
        f_all = f_vec @ z + f_const
        for pf, ps, pc in self.planes:
            cons.append(self.t <= cp.multiply(pf, s_all) + cp.multiply(ps, f_all) - pc)
        # S_g >= the lower corner the planes assume (from intervals, or from the incumbent)
        self.s_floor = cp.Parameter(g)
        cons.append(s_all >= self.s_floor)
        objective_expr = self.alpha @ self.t
        self.depth_rows = np.zeros((ns, self.no))
        self.depth_const = np.zeros(ns)
        for s in range(ns):
            if not any(o.stage == s and o.repeat for o in self.options):
                self.depth_const[s] = 1.0
        for k, o in enumerate(self.options):
            if o.repeat:
                self.depth_rows[o.stage, k] = o.depth
        # the depth penalty, exact: β·exp(std of the per-stage depths) is convex
        penalized = [s for s in range(ns)
                     if not (objective.skip_first_stage_depth and ns > 1 and s == 0)]
        self.penalty_floor = 0.0
        if objective.beta > 0 and len(penalized) > 1:
            self.penalty_floor = objective.beta  # β·exp(std) >= β
            dvec = self.depth_rows[penalized] @ y + self.depth_const[penalized]
            centered = dvec - cp.sum(dvec) / len(penalized)
            objective_expr = objective_expr - self.scale * objective.beta * cp.exp(
                cp.norm(centered, 2) / math.sqrt(len(penalized)))
        self.problem = cp.Problem(cp.Maximize(objective_expr), cons)
        self._compile_points()

    # -- structure ----------------------------------------------------------------------

    def stage_depths(self, s: int) -> list[int]:
        param, fixed = self.model.stage_depth[s]
        if param is None:
            return [fixed]
        return [int(v) for v in param_values(self.model.depth_params[param])]

    def stage_kernels(self, s: int) -> list[int]:
        param = self.model.stage_kernel[s]
        if param is None:
            return [0]
        return list(range(len(param_values(self.model.kernel_params[param]))))

    def _blocks_of(self, name: str) -> tuple[Callable[[tuple[int, int, int]], Block], float]:
        """How budget ``name`` reads a block, and the budget it leaves for the blocks.

        A block is (kernels, constant): each kernel is a list of alternative posynomials
        (the kernel costs their maximum), plus a constant. A cost is one kernel with one
        alternative; the roofline latency is max(compute, memory) per fused kernel (and its
        overhead, when the calibration overlaps it) plus the kernels' constant overheads,
        under the model's calibration (:func:`~archdesign.optimize.posynomial.roofline_terms`)."""
        if name in COSTS:
            return (lambda key: ([[self.model.parts[key].costs[name]]], 0.0)), \
                self.limits[name]
        assert self.latency is not None
        roofline, terms = self.latency
        cal = roofline.calibration
        scale = cal.get("scale", 1.0)
        per_kernel = cal.get("per_kernel_ms", 0.0) / scale

        def block(key: tuple[int, int, int]) -> Block:
            t = terms[key]
            return (t.kernels,
                    t.overhead + per_kernel * len(t.kernels))

        return block, (self.limits[name] - cal.get("constant_ms", 0.0)) / scale

    def free_budget(self, name: str) -> float:
        """The budget the blocks share (the latency calibration's constant taken out)."""
        if name == "latency_ms" and self.latency is not None:
            return self.limits[name] - self.latency[0].calibration.get("constant_ms", 0.0)
        return self.limits[name]

    def _budget(self, name: str) -> list[Any]:
        m = self.model
        block_of, limit = self._blocks_of(name)
        if limit <= 0:  # the calibration's constant alone exceeds the budget
            limit = 1e-12
        rows = self.cone_rows
        linear = np.zeros(self.no)
        kernels: list[list[list[int]]] = []  # per kernel: per alternative, its terms
        for ks in self.option_groups:
            block_kernels, constant = block_of(self.options[ks[0]].key)
            for k in ks:
                linear[k] += self.options[k].multiplier * constant / limit
            kernels.extend([[rows.add(ks, mono, 1 / limit) for mono in posynomial]
                            for posynomial in alternatives] for alternatives in block_kernels)
        terms: list[Any] = []
        cons: list[Any] = []
        values = rows.close(cons)
        if values is not None:
            terms.extend(_kernel_sums(kernels, values, cons))
        fixed: list[list[Any]] = []
        constant = 0.0
        for key in ((-1, 0, 0), (m.num_stages, 0, 0)):
            block_kernels, c = block_of(key)
            constant += c / limit
            for alternatives in block_kernels:
                fixed.append([cp.sum(cp.exp(np.array([mono.exps for mono in posy]) @ self.z
                                            + np.log([mono.coef / limit for mono in posy])))
                              for posy in alternatives if posy])
        for alts in fixed:
            if len(alts) == 1:
                terms.append(alts[0])
            elif alts:
                top = cp.Variable()
                cons.extend(top >= a for a in alts)
                terms.append(top)
        if np.any(linear):
            terms.append(linear @ self.y)
        if terms or constant:
            self.budget_cons[name] = cp.sum(cp.hstack(terms)) + constant <= 1 if terms \
                else None
            if self.budget_cons[name] is not None:
                cons.append(self.budget_cons[name])
        return cons

    def _peak_budget(self) -> list[Any]:
        """Peak activation memory: every live set of every block within the budget.

        An option's live set enters as its perspective, y·P(x/y) <= y (normalized), and a
        (stage, kernel)'s repeated blocks as D·P(u/D) <= D: both exact at integral points
        (no constraint where the block is absent) and convex."""
        m = self.model
        factor = self.bytes_per_element / self.limits["peak_activation_bytes"]
        rows = self.cone_rows
        sums: list[tuple[int, int, float]] = []  # (constraint, term)
        weights: list[tuple[int, int, float]] = []  # (constraint, option, weight)
        n_cons = 0
        for ks in self.option_groups:
            for live in peak_terms(m.parts[self.options[ks[0]].key]):
                sums.extend((n_cons, rows.add(ks, mono, factor), 1.0) for mono in live)
                weights.extend((n_cons, k, float(self.options[k].multiplier)) for k in ks)
                n_cons += 1
        cons: list[Any] = []
        values = rows.close(cons)
        if values is not None:
            weight = _matrix(weights, (n_cons, self.no)) @ self.y
            cons.append(_matrix(sums, (n_cons, values.shape[0])) @ values <= weight)
            self.peak_cons.append((cons[-1], weight))
        for key in ((-1, 0, 0), (m.num_stages, 0, 0)):
            for live in peak_terms(m.parts[key]):
                cons.append(cp.sum(cp.exp(np.array([mono.exps for mono in live]) @ self.z
                                          + np.log([mono.coef * factor for mono in live])))
                            <= 1)
                self.peak_cons.append((cons[-1], None))
        return cons

    def peak_dual(self) -> float:
        """d(scaled objective)/d log(peak budget): each live-set constraint's dual times
        its right-hand side (scaling the budget scales every right-hand side)."""
        total = 0.0
        for con, weight in self.peak_cons:
            dual = np.asarray(con.dual_value if con.dual_value is not None else 0.0, float)
            rhs = 1.0 if weight is None else np.asarray(weight.value, float)
            total += float(np.sum(dual * rhs))
        return total

    def _groups(self) -> list[dict[str, Any]]:
        """Groups end before each stage whose first block downsamples; the stem opens the
        first, the head joins the last. Per group: its stages and F = log C + log r²."""
        m = self.model
        ns = m.num_stages
        out: list[dict[str, Any]] = []
        stem = m.parts[(-1, 0, 0)]
        current: list[int] = []
        last = (*stem.out_channels, stem.out_size)
        for s in range(ns):
            part = m.parts[(s, 0, 0)]
            if part.downsamples:
                out.append({"stages": list(current),
                            "f": (last[0], last[1] + 2 * math.log(last[2]))})
            current.append(s)
            last = (*part.out_channels, part.out_size)
        head = m.parts[(ns, 0, 0)]
        if head.convs:
            last = (*head.out_channels, last[2])
        out.append({"stages": list(current), "f": (last[0], last[1] + 2 * math.log(last[2]))})
        for grp in out:  # the one size variable F depends on, if it is one
            nonzero = np.flatnonzero(grp["f"][0])
            grp["var"] = int(nonzero[0]) if len(nonzero) == 1 else None
        return out

    def _linear_forms(self) -> tuple[Any, ...]:
        m = self.model
        g, n, ns = len(self.groups), m.n, m.num_stages
        ent_x, ent_y = np.zeros((g, self.nx)), np.zeros((g, self.no))
        ent_z, ent_c = np.zeros((g, n)), np.zeros(g)
        conv_y, conv_c = np.zeros((g, self.no)), np.zeros(g)
        stem, head = m.parts[(-1, 0, 0)], m.parts[(ns, 0, 0)]
        for gi, grp in enumerate(self.groups):
            ent_z[gi] += stem.entropy[0]
            ent_c[gi] += stem.entropy[1]
            conv_c[gi] += stem.convs
            if gi == g - 1:
                ent_z[gi] += head.entropy[0]
                ent_c[gi] += head.entropy[1]
                conv_c[gi] += head.convs
            for k, o in enumerate(self.options):
                if o.stage not in grp["stages"]:
                    continue
                vec, const, convs = self.option_entropy(o)
                for i, var in enumerate(o.support):
                    ent_x[gi, o.offset + i] += vec[var]
                ent_y[gi, k] += const
                conv_y[gi, k] += convs
        return ent_x, ent_y, ent_z, ent_c, conv_y, conv_c

    def option_entropy(self, o: Option) -> tuple[np.ndarray, float, int]:
        """Entropy (vec·z + const) and counted convs of an option's blocks."""
        part = self.model.parts[o.key]
        k = o.multiplier
        return k * part.entropy[0], k * part.entropy[1], k * part.convs

    def option_ties(self, o: Option) -> list[Tie]:
        """The ties an option decides: those of its block kind (none for no repeated block:
        depth 1 is one option, whatever the widths)."""
        return [] if o.multiplier == 0 else self.model.block_ties(o.stage, int(o.repeat))

    def held(self, o: Option) -> list[tuple[int, int]]:
        """The pairs of widths an option's ties make equal."""
        return [t.pair for b, t in enumerate(self.option_ties(o)) if o.mask >> b & 1]

    # -- nodes ---------------------------------------------------------------------------

    def allowed_options(self, box: NodeBox) -> np.ndarray:
        """Which options the box allows (a bool per option; kept on the box): those at a
        depth and kernel the box holds, agreeing with every tie it decides, not untied where
        the box holds both widths at one value, and with a common range for the widths
        they tie."""
        if box.allowed is None:
            ok = np.ones(self.no, bool)
            for options, chosen in ((self.depth_options, box.depths),
                                    (self.kernel_options, box.kernels)):
                for p, (ks, values) in options.items():  # values: small ints
                    member = np.zeros(int(values.max()) + 1, bool)
                    member[[v for v in chosen[p] if v < len(member)]] = True
                    ok[ks] &= member[values]
            for tie, (ks, held) in self.tie_options.items():
                decided = box.ties.get(tie)
                if decided is not None:
                    ok[ks[held != decided]] = False
                i, j = tie.pair
                if box.lo[i] == box.hi[i] == box.lo[j] == box.hi[j]:
                    ok[ks[~held]] = False  # the box holds the two widths equal
            for group, ks in self.tied_groups:  # tied widths need a common range
                if box.lo[group].max() > box.hi[group].min():
                    ok[ks] = False
            box.allowed = ok
        return box.allowed

    def _index_options(self) -> None:
        """What :meth:`allowed_options` and :meth:`solve` read, per option: its depth and
        kernel under their parameters, the ties it decides, the widths its ties join, and
        the variable of every slot of its copy."""
        m = self.model
        depth: dict[int, list[tuple[int, int]]] = {}
        kernel: dict[int, list[tuple[int, int]]] = {}
        ties: dict[Tie, list[tuple[int, bool]]] = {}
        groups: dict[tuple[int, ...], list[int]] = {}
        self.slot_var = np.zeros(self.nx, int)
        slot_groups: list[list[int]] = []
        for k, o in enumerate(self.options):
            dp, kp = m.stage_depth[o.stage][0], m.stage_kernel[o.stage]
            if o.repeat and dp is not None:
                depth.setdefault(dp, []).append((k, o.depth))
            if kp is not None:
                kernel.setdefault(kp, []).append((k, o.kernel))
            for b, tie in enumerate(self.option_ties(o)):
                ties.setdefault(tie, []).append((k, bool(o.mask >> b & 1)))
            self.slot_var[o.offset:o.offset + len(o.support)] = o.support
            for group in components(self.held(o)):
                groups.setdefault(tuple(sorted(group)), []).append(k)
                slot_groups.append([o.offset + o.support.index(i) for i in group])

        def arrays(pairs: list[tuple[int, Any]]) -> tuple[np.ndarray, np.ndarray]:
            return np.array([k for k, _ in pairs], int), np.array([v for _, v in pairs])

        self.depth_options = {p: arrays(v) for p, v in depth.items()}
        self.kernel_options = {p: arrays(v) for p, v in kernel.items()}
        self.tie_options = {tie: arrays(v) for tie, v in ties.items()}
        self.tied_groups = [(np.array(g), np.array(ks)) for g, ks in groups.items()]
        # the slots of each tied group of each option: they share their common range
        self.tied_slots = [np.array(slots) for slots in slot_groups]

    def entropy_bounds(self, box: NodeBox) -> tuple[np.ndarray, np.ndarray]:
        """Interval bounds of every S_g over the node."""
        ns = self.model.num_stages
        low: dict[tuple[int, bool, int], float] = {}
        high: dict[tuple[int, bool, int], float] = {}
        lows, highs = interval(*self.option_entropy_rows, box.lo, box.hi)
        for o, lo, hi, allowed in zip(self.options, lows.tolist(), highs.tolist(),
                                      self.allowed_options(box), strict=True):
            if allowed:
                key = (o.stage, o.repeat, o.kernel)
                low[key] = min(low.get(key, math.inf), lo)
                high[key] = max(high.get(key, -math.inf), hi)
        stage_lo, stage_hi = np.full(ns, math.inf), np.full(ns, -math.inf)
        for (s, repeat, v), lo in low.items():
            if not repeat:
                rep_lo = low.get((s, True, v), 0.0)
                rep_hi = high.get((s, True, v), 0.0)
                stage_lo[s] = min(stage_lo[s], lo + rep_lo)
                stage_hi[s] = max(stage_hi[s], high[(s, repeat, v)] + rep_hi)
        s_lo, s_hi = [], []
        ent_z, ent_c = self.entropy_forms[2], self.entropy_forms[3]
        for gi, grp in enumerate(self.groups):
            lo, hi = interval(ent_z[gi], float(ent_c[gi]), box.lo, box.hi)
            s_lo.append(lo + sum(stage_lo[s] for s in grp["stages"]))
            s_hi.append(hi + sum(stage_hi[s] for s in grp["stages"]))
        return np.array(s_lo), np.array(s_hi)

    def solve(self, box: NodeBox, tangent_at: tuple[np.ndarray, np.ndarray] | None = None,
              lower: float | None = None) -> Solution | None:
        """The node's bound and relaxed solution; None when the node is infeasible.

        ``lower``: only designs scoring more than this matter (the incumbent). Then the
        last group's entropy has a floor, S_G >= (lower + β − Σ_{g<G} α_g·F_g^hi·S_g^hi)
        / (α_G·F_G^hi), which tightens its McCormick planes; the bound holds for every
        design in the node that beats ``lower``, which is all branch and bound needs.
        ``tangent_at=(F0, S0)``: both planes through that point instead of the McCormick
        envelope (a local model of the score, for shadow prices)."""
        allowed = self.allowed_options(box).astype(float)
        for s in range(self.model.num_stages):
            for repeat in (False, True):
                family = self.families.get((s, repeat))
                if family is not None and not allowed[family].any():
                    return None  # (a decided tie no design can hold)
        self.lo.value, self.hi.value = box.lo, box.hi
        self.allowed.value = allowed
        slot_lo, slot_hi = box.lo[self.slot_var], box.hi[self.slot_var]
        for slots in self.tied_slots:  # tied widths: their common range
            slot_lo[slots], slot_hi[slots] = slot_lo[slots].max(), slot_hi[slots].min()
        self.slot_lo.value, self.slot_hi.value = slot_lo, slot_hi
        f_lo, f_hi, s_lo, s_hi = self.plane_bounds(box)
        if lower is not None and math.isfinite(lower):
            need = lower + self.penalty_floor
            rest = float(np.sum(self.alpha[:-1] * f_hi[:-1] * s_hi[:-1]))
            floor = max((need - rest) / (self.alpha[-1] * f_hi[-1]),
                        need / float(np.sum(self.alpha * f_hi)))
            if floor > s_hi[-1]:
                return None  # nothing in the node can beat ``lower``
            s_lo[-1] = max(s_lo[-1], floor)
        self.s_floor.value = s_lo
        pairs = [(f_hi, s_lo), (f_lo, s_hi)] if tangent_at is None else [tangent_at, tangent_at]
        # F·S <= f_b·S + s_b·F − f_b·s_b
        for (pf, ps, pc), (fb, sb) in zip(self.planes, pairs, strict=True):
            pf.value, ps.value = self.scale * fb, self.scale * sb
            pc.value = self.scale * fb * sb
        failed = Solution(math.inf, (box.lo + box.hi) / 2, allowed,
                          np.zeros(self.model.num_stages), np.zeros(self.nx))
        status = self._run(retry=lower is None)
        if status not in ("optimal", "infeasible") and lower is not None:
            # the incumbent's floor can leave the solver nothing to stand on (a node it
            # makes empty): without it the node gets an ordinary bound
            return self.solve(box, tangent_at)
        if status == "infeasible":
            return None
        # An inaccurate answer must not prune: "infeasible_inaccurate" keeps the node open
        # and an inaccurate optimum is widened so the bound stays an over-estimate.
        if status not in ("optimal", "optimal_inaccurate") or self.z.value is None:
            return failed
        value = float(self.problem.value) / self.scale
        margin = INACCURATE_MARGIN if status == "optimal_inaccurate" else BOUND_MARGIN
        value += margin * max(1.0, abs(value))
        weights = np.clip(np.asarray(self.y.value, float), 0.0, 1.0)
        return Solution(value, np.asarray(self.z.value, float), weights,
                        self.depth_rows @ weights + self.depth_const,
                        np.asarray(self.x.value, float))

    def _run(self, retry: bool = True) -> str:
        """A node the incumbent's floor leaves (nearly) empty fails with the loose settings
        and with Clarabel's defaults about as often (measured on the ResNet problems), at
        twice the cost: its caller (``retry`` False) solves it again without the floor."""
        return solve_clarabel(self.problem, retry)

    def group_values(self, z: np.ndarray, weights: np.ndarray,
                     copies: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """F_g and S_g at a point; without copies, each option's copy is y_o·z."""
        if copies is None:
            copies = np.zeros(self.nx)
            for k, o in enumerate(self.options):
                sup = list(o.support)
                copies[o.offset:o.offset + len(sup)] = weights[k] * z[sup]
        ent_x, ent_y, ent_z, ent_c = self.entropy_forms
        s = ent_x @ copies + ent_y @ weights + ent_z @ z + ent_c
        f = np.array([grp["f"][0] @ z + grp["f"][1] for grp in self.groups])
        return f, s


    def points(self, points: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """z and the option weights (each 0 or 1) of points of the space, one row each."""
        m = self.model
        z = np.log(np.array([[float(params[p.name]) for p in m.variables] for params in points]
                            ).reshape(len(points), m.n))
        depths = np.array([[int(params[p.name]) for p in m.depth_params] for params in points],
                          int).reshape(len(points), len(m.depth_params))
        kernels = np.array([[index[params[p.name]] for p, index
                             in zip(m.kernel_params, self.kernel_index, strict=True)]
                            for params in points], int).reshape(len(points),
                                                                len(m.kernel_params))
        weights = np.zeros((len(points), self.no))
        rows = np.arange(len(points))
        for s in range(m.num_stages):
            dp, fixed_depth = m.stage_depth[s]
            depth = np.full(len(points), fixed_depth) if dp is None else depths[:, dp]
            kp = m.stage_kernel[s]
            kernel = np.zeros(len(points), int) if kp is None else kernels[:, kp]
            for repeat in (False, True):
                mask = np.zeros(len(points), int)
                for bit, t in enumerate(m.block_ties(s, int(repeat))):
                    mask |= (z[:, t.pair[0]] == z[:, t.pair[1]]).astype(int) << bit
                if repeat:
                    mask[depth <= 1] = 0  # a single repeated option at depth 1
                option = self.option_table[(s, repeat)][depth if repeat else 1, kernel, mask]
                found = option >= 0
                weights[rows[found], option[found]] = 1.0
        return z, weights

    def point_score(self, params: dict[str, Any]) -> float:
        """The score the relaxation's own terms give at a point of the space (its groups,
        entropies, F and depth penalty): what it must equal there."""
        return float(self.point_figures([params])[0][0])

    def point_figures(self, points: list[dict[str, Any]]
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The scores, the modeled costs (FLOPs, params, activations: those budgeted) and
        ρ at points of the space, from the relaxation's own terms: exact at every point
        (:meth:`verify_objective` checks them), and far cheaper than recounts (one matrix
        product per term for all the points), so a local search can pass over candidates
        that cannot beat its best."""
        z, weights = self.points(points)  # (points, n), (points, options)
        _, ent_y, ent_z, ent_c = self.entropy_forms
        no, g, n = self.option_entropy_z.shape
        # each point's active options' entropy rows on z, summed: (points, groups, n)
        option_z = (weights @ self.option_entropy_z.reshape(no, g * n)).reshape(-1, g, n)
        s = z @ ent_z.T + ent_c + np.einsum("pgn,pn->pg", option_z, z) + weights @ ent_y.T
        f = z @ np.array([grp["f"][0] for grp in self.groups]).T \
            + np.array([grp["f"][1] for grp in self.groups])
        depths = weights @ self.depth_rows.T + self.depth_const
        penalty = np.array([self._depth_penalty(tuple(row))
                            for row in np.rint(depths).astype(int).tolist()])
        score = (f * s) @ self.alpha - penalty
        held = np.hstack([weights, np.ones((len(points), 1)), np.zeros((len(points), 1))])
        costs = {name: (np.exp(z @ exps.T + log_c) * (held @ self.cost_holders[name].T)
                        ).sum(axis=1)
                 for name, (exps, log_c) in self.point_costs.items()}
        conv_y, conv_c = self.conv_forms  # ρ_g = L_g / exp(2·S_g / L_g), at most over g
        convs = np.maximum(weights @ conv_y.T + conv_c, 1e-300)
        costs["rho"] = np.where(convs >= 1, convs * np.exp(-2 * s / convs), 0.0).max(axis=1)
        return score, costs

    def _depth_penalty(self, depths: tuple[int, ...]) -> float:
        """The objective's depth penalty, once per depths (a search's candidates share a
        few)."""
        out = self.penalties.get(depths)
        if out is None:
            out = self.penalties[depths] = self.objective.depth_penalty(depths)
        return out

    def budget_caps(self, box: NodeBox, candidates: list[np.ndarray]) -> list[int]:
        """How many of each size variable's ``candidates`` (its grid's log values in the
        box, increasing) the FLOPs, params and activations budgets leave to a design of
        the box: with that size at the candidate, every other at its lower end and every
        stage at its cheapest allowed option, the cost must fit. Where a cost has no
        negative exponent it grows with every size, so no design of the box takes a size
        past its count (0: none fits at all). Tighter boxes give tighter planes."""
        counts = [len(c) for c in candidates]
        blocked = ~np.append(self.allowed_options(box), [True, False])
        for name in self.monotone_costs:
            # the cheapest completion grows with each candidate, so the candidates that fit
            # are a prefix of each variable's: found on a coarse stride of every variable
            # at once, then within the step that crosses the budget
            steps = [max(1, math.isqrt(n)) for n in counts]
            coarse = [np.arange(0, n, step) for n, step in zip(counts, steps, strict=True)]
            fit = self._fits(name, box, blocked, candidates, coarse)
            fine = []
            for i, (at, ok) in enumerate(zip(coarse, fit, strict=True)):
                start = int(at[ok][-1]) if ok.any() else -1  # -1: none fits
                fine.append(np.arange(start + 1, min(start + steps[i], counts[i]))
                            if start >= 0 else at[:0])
                counts[i] = start + 1
            for i, ok in enumerate(self._fits(name, box, blocked, candidates, fine)):
                counts[i] += int(ok.sum())
        return counts

    def _fits(self, name: str, box: NodeBox, blocked: np.ndarray,
              candidates: list[np.ndarray], at: list[np.ndarray]) -> list[np.ndarray]:
        """Whether ``name``'s cheapest completion of the box fits its budget with size i
        at ``candidates[i][at[i]]`` and every other size at its lower end, per size i."""
        exps, log_c = self.point_costs[name]
        base = np.exp(exps @ box.lo + log_c)
        # per point, each holder's cost: the box's lower end plus what size i's move adds
        # to the monomials it moves
        per_holder = np.vstack([
            (base[rows] * np.expm1(np.outer(cand[idx] - box.lo[i], exps_i))) @ holders
            for i, (cand, idx, (rows, exps_i, holders))
            in enumerate(zip(candidates, at, self.var_rows[name], strict=True))])
        per_holder += base @ self.cost_holders[name]
        per_holder[:, blocked] = np.inf  # and the padding column
        lowest = per_holder[:, -2] + \
            per_holder[:, self.option_families].min(axis=2).sum(axis=1)
        ok = lowest <= (1 + 1e-9) * self.limits[name]
        return np.split(ok, np.cumsum([len(idx) for idx in at])[:-1])

    def _compile_points(self) -> None:
        """What :meth:`point_figures` reads: every option's entropy as a matrix on z (its
        copy of the stage's variables is z at a point), and every monomial of every budgeted
        cost with the option that holds it (-1: the stem and head, always there)."""
        m = self.model
        # per (stage, block kind): [depth, kernel, tie mask] -> option (-1: none), for
        # :meth:`points`
        masks = 1 << max(len(m.block_ties(s, b)) for s in range(m.num_stages) for b in (0, 1))
        shape = (1 + max(o.depth for o in self.options),
                 1 + max(o.kernel for o in self.options), masks)
        self.option_table = {(s, repeat): np.full(shape, -1)
                             for s in range(m.num_stages) for repeat in (False, True)}
        for k, o in enumerate(self.options):
            self.option_table[(o.stage, o.repeat)][o.depth if o.repeat else 1, o.kernel,
                                                   o.mask] = k
        ent_x = self.entropy_forms[0]
        self.option_entropy_z = np.zeros((self.no, len(self.groups), m.n))
        for k, o in enumerate(self.options):
            for i, var in enumerate(o.support):
                self.option_entropy_z[k, :, var] += ent_x[:, o.offset + i]
        self.multipliers = np.array([o.multiplier for o in self.options], float)
        self.kernel_index = [{v: i for i, v in enumerate(param_values(p))}
                             for p in m.kernel_params]
        self.penalties: dict[tuple[int, ...], float] = {}
        entropies = [self.option_entropy(o) for o in self.options]  # for entropy_bounds
        self.option_entropy_rows = (
            np.array([vec for vec, _, _ in entropies]).reshape(self.no, m.n),
            np.array([const for _, const, _ in entropies]))
        # the blocks' parts, each with the options that hold it (options at other depths
        # hold the same repeated block); -1: the stem and head, always there
        holders: dict[tuple[int, int, int], list[int]] = {}
        for k, o in enumerate(self.options):
            holders.setdefault(o.key, []).append(k)
        for key in ((-1, 0, 0), (m.num_stages, 0, 0)):
            holders[key] = [-1]
        # each monomial of each budgeted cost (exponents, log coefficient), and its count
        # in each option (the block count), in the stem and head (the next column) and
        # in the padding of the families (the last)
        self.point_costs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.cost_holders: dict[str, np.ndarray] = {}
        # per size: the monomials it moves, their exponents of it and their holder rows
        self.var_rows: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self.monotone_costs: set[str] = set()
        counts = [*self.multipliers, 1.0]
        for name in COSTS:
            if name not in self.limits:
                continue
            rows = [(ks, mono) for key, ks in holders.items()
                    for mono in m.parts[key].costs[name]]
            exps = np.array([mono.exps for _, mono in rows], float).reshape(len(rows), m.n)
            self.point_costs[name] = (exps, np.log([mono.coef for _, mono in rows]))
            holder = np.zeros((len(rows), self.no + 2))  # options, stem and head, padding
            for r, (ks, _) in enumerate(rows):
                holder[r, [k % (self.no + 1) for k in ks]] = [counts[k] for k in ks]
            self.cost_holders[name] = holder
            moved = [np.flatnonzero(exps[:, i]) for i in range(m.n)]
            self.var_rows[name] = [(r, exps[r, i], holder[r]) for i, r in enumerate(moved)]
            if np.all(exps >= 0):
                self.monotone_costs.add(name)
        families: dict[tuple[int, bool], list[int]] = {}
        for k, o in enumerate(self.options):
            families.setdefault((o.stage, o.repeat), []).append(k)
        self.families = {key: np.array(ks) for key, ks in families.items()}
        width = max((len(ks) for ks in families.values()), default=0)
        self.option_families = np.array([ks + [self.no + 1] * (width - len(ks))
                                         for ks in families.values()], int)

    def verify_objective(self, space: SearchSpace, samples: int = 6) -> None:
        """The DeepMAD grouping and entropies of the relaxation must reproduce the
        objective at sampled points of the space, tied variants included (as :func:`_verify`
        does for the costs), and :meth:`point_figures` the model's costs: a network the
        relaxation groups differently is an error, not a wrong bound."""
        for params in sample_points(space, self.model, np.random.default_rng(2), samples):
            try:
                spec = space.decode(params)
            except InputError:
                continue
            want = self.objective.score(spec)
            scores, costs = self.point_figures([params])
            got = float(scores[0])
            if len(deepmad_groups(spec)) != len(self.groups) or \
                    abs(got - want) > 1e-6 * max(1.0, abs(want)):
                raise ModelingError(
                    f"space {space.name!r}: the MP's relaxation gives the DeepMAD score "
                    f"{got:.6g} ({len(self.groups)} groups) where the objective gives "
                    f"{want:.6g} ({len(deepmad_groups(spec))} groups) at {params}")
            counted = model_costs(self.model, params)  # itself checked against cost()
            counted["rho"] = effectiveness(spec)
            for name, values in costs.items():
                value = float(values[0])
                if abs(value - counted[name]) > 1e-6 * max(1.0, counted[name]):
                    raise ModelingError(
                        f"space {space.name!r}: the MP's relaxation gives {name} "
                        f"{value:.6g} where its posynomial model gives "
                        f"{counted[name]:.6g} at {params}")

    def plane_bounds(self, box: NodeBox) -> tuple[np.ndarray, ...]:
        """(F_lo, F_hi, S_lo, S_hi) per group over the node: the McCormick corners."""
        f_lo, f_hi = (np.array(v) for v in zip(*(
            interval(grp["f"][0], grp["f"][1], box.lo, box.hi) for grp in self.groups),
            strict=True))
        s_lo, s_hi = self.entropy_bounds(box)
        return f_lo, f_hi, s_lo, s_hi

    # -- branching data --------------------------------------------------------------------

    def marginals(self, weights: np.ndarray) -> tuple[list[dict[int, float]],
                                                      list[dict[int, float]]]:
        """Per stage: the weight of every kernel (first block) and of every depth."""
        ns = self.model.num_stages
        first: list[dict[int, float]] = [{} for _ in range(ns)]
        rep: list[dict[int, float]] = [{} for _ in range(ns)]
        for k, o in enumerate(self.options):
            if o.repeat:
                rep[o.stage][o.depth] = rep[o.stage].get(o.depth, 0.0) + float(weights[k])
            else:
                first[o.stage][o.kernel] = first[o.stage].get(o.kernel, 0.0) + float(weights[k])
        return first, rep

    def tied_weight(self, weights: np.ndarray) -> dict[Tie, float]:
        """Per tie: the weight of the options of its stage's block kind that hold it (the
        repeated blocks' weights of a stage sum to one, as the first blocks' do)."""
        out: dict[Tie, float] = dict.fromkeys(self.model.ties, 0.0)
        for k, o in enumerate(self.options):
            for b, tie in enumerate(self.option_ties(o)):
                if o.mask >> b & 1:
                    out[tie] += float(weights[k])
        return out

    def stage_weights(self, f: np.ndarray) -> np.ndarray:
        """d score / d (entropy of stage s) = Σ α_g·F_g over the groups whose S holds s."""
        out = np.zeros(self.model.num_stages)
        for g, grp in enumerate(self.groups):
            for s in grp["stages"]:
                out[s] += self.alpha[g] * f[g]
        return out

    def gradient(self, weights: np.ndarray, f: np.ndarray, s: np.ndarray) -> np.ndarray:
        """d(Σ α·F·S)/dz with each option's copy held at y_o·z."""
        ent_x, _, ent_z, _ = self.entropy_forms
        scaled = np.zeros_like(ent_z)
        for k, o in enumerate(self.options):
            for i, var in enumerate(o.support):
                scaled[:, var] += ent_x[:, o.offset + i] * weights[k]
        d_s = ent_z + scaled
        d_f = np.array([grp["f"][0] for grp in self.groups])
        return (self.alpha * f) @ d_s + (self.alpha * s) @ d_f

    def repeat_entropy(self, s: int, z: np.ndarray) -> float:
        """The entropy one repeated block of stage s adds at z (largest kernel)."""
        keys = [k for k in self.model.parts if k[0] == s and k[1] == 1]  # untied
        return max((float(self.model.parts[k].entropy[0] @ z + self.model.parts[k].entropy[1])
                    for k in keys), default=0.0)

    def kernel_entropy_gap(self, s: int, kernels: tuple[int, ...], depth: float) -> float:
        """Entropy between the largest and smallest of a stage's kernels, at a depth."""
        parts = self.model.parts
        out = parts[(s, 0, kernels[-1])].entropy[1] - parts[(s, 0, kernels[0])].entropy[1]
        if (s, 1, kernels[0]) in parts:
            out += (depth - 1) * (parts[(s, 1, kernels[-1])].entropy[1]
                                  - parts[(s, 1, kernels[0])].entropy[1])
        return abs(out)


def solve_clarabel(problem: cp.Problem, retry: bool = True) -> str:
    """Solve with the loose settings, then (``retry``) Clarabel's defaults if that fails;
    the status of the last try ("solver_error" when it raised: the problem then still holds
    the status and values of an earlier solve, another node's, which must not be read as
    this one's)."""
    status = "solver_error"
    for settings in (SOLVER_SETTINGS, {}) if retry else (SOLVER_SETTINGS,):
        try:
            with warnings.catch_warnings():  # inaccurate statuses are the caller's
                warnings.simplefilter("ignore", UserWarning)
                problem.solve(solver=cp.CLARABEL, **settings)
        except cp.error.SolverError:
            status = "solver_error"
            continue
        status = str(problem.status) if problem.status else "solver_error"
        if status in ("optimal", "infeasible"):
            break
    return status


class _ConeRows:
    """The exponential-cone rows every budget of the relaxation shares: a row is the
    perspective of one monomial's exponents over the copies of a group of options
    (y·c·exp(a·x/y), weighted by their block counts), and a budget reads it times the
    ratio of its own coefficient to the row's c. Monomials that differ by a constant
    factor only (a conv's FLOPs and its parameters at a fixed resolution, its output's
    bytes in a live set) share a row: exact, and on DeepMAD-29M at 288 px 225 cones
    instead of 891.

    A budget adds its terms (:meth:`add`), then :meth:`close` gives their values (as a
    vector, in the order added), adding a cone for the rows first seen."""

    def __init__(self, relax: HullRelaxation) -> None:
        self.relax = relax
        self.index: dict[tuple[tuple[int, ...], tuple[float, ...]], int] = {}
        self.log_c: list[float] = []
        self.entries: list[tuple[int, int, float]] = []  # of rows without a cone yet
        self.owner: list[tuple[int, int, float]] = []
        self.cones: list[Any] = []  # each cone's epigraph variables, in row order
        self.made = 0  # rows with a cone
        self.terms: list[tuple[int, float]] = []  # the open budget's: (row, factor)

    def add(self, ks: list[int], mono: Monomial, scale: float) -> int:
        """A term ``scale``·mono over the options ``ks``; its index among the open
        budget's terms."""
        log_c = math.log(mono.coef * scale)
        key = (tuple(ks), tuple(mono.exps))
        r = self.index.get(key)
        if r is None:
            r = self.index[key] = len(self.log_c)
            for k in ks:
                o = self.relax.options[k]
                if o.multiplier:
                    self.entries.extend((r - self.made, o.offset + i,
                                         o.multiplier * mono.exps[var])
                                        for i, var in enumerate(o.support) if mono.exps[var])
                    self.owner.append((r - self.made, k, float(o.multiplier)))
            self.log_c.append(log_c)
        self.terms.append((r, math.exp(log_c - self.log_c[r])))
        return len(self.terms) - 1

    def close(self, cons: list[Any]) -> Any:
        """The open budget's terms' values (the new rows' cone appended to ``cons``), or
        None when it has none."""
        relax, nr = self.relax, len(self.log_c) - self.made
        if nr:
            y_rows = _matrix(self.owner, (nr, relax.no)) @ relax.y
            epi = cp.Variable(nr)
            cons.append(cp.constraints.ExpCone(
                _matrix(self.entries, (nr, relax.nx)) @ relax.x
                + cp.multiply(np.array(self.log_c[self.made:]), y_rows), y_rows, epi))
            self.cones.append(epi)
            self.made += nr
            self.entries, self.owner = [], []
        terms, self.terms = self.terms, []
        if not terms:
            return None
        rows = cp.hstack(self.cones) if len(self.cones) > 1 else self.cones[0]
        pick = _matrix([(t, r, f) for t, (r, f) in enumerate(terms)], (len(terms), self.made))
        return pick @ rows


def _kernel_sums(kernels: list[list[list[int]]], terms: Any, cons: list[Any]) -> list[Any]:
    """Each kernel's cost from its terms: the sum of its one alternative, or a new
    variable above the sum of each alternative (their maximum)."""
    single = [r for k in kernels if len(k) == 1 for r in k[0]]
    out = [cp.sum(terms[single])] if single else []
    multi = [k for k in kernels if len(k) > 1]
    if multi:
        top = cp.Variable(len(multi))
        width = max(len(k) for k in multi)
        for a in range(width):
            entries = [(i, r, 1.0) for i, k in enumerate(multi) if a < len(k) for r in k[a]]
            cons.append(top >= _matrix(entries, (len(multi), terms.shape[0])) @ terms)
        out.append(cp.sum(top))
    return out


def _matrix(entries: list[tuple[int, int, float]], shape: tuple[int, int]) -> sp.csr_matrix:
    if not entries:
        return sp.csr_matrix(shape)
    rows, cols, vals = zip(*entries, strict=True)
    return sp.csr_matrix((vals, (rows, cols)), shape=shape)


def interval(vec: np.ndarray, const: Any, lo: np.ndarray, hi: np.ndarray) -> tuple[Any, Any]:
    """The range of vec·z + const over the box [lo, hi]: of each row, for a matrix."""
    low = const + np.minimum(vec * lo, vec * hi).sum(axis=-1)
    high = const + np.maximum(vec * lo, vec * hi).sum(axis=-1)
    return low, high
