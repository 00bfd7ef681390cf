"""Branching for the MP's branch and bound: its nodes and where to split them.

A node fixes a box of grid indices on every size variable, the depth and kernel candidates
of every stage and which ties (structural branches on equal widths: ``Model.ties``) it has
decided. It is split where its relaxation is loosest: the McCormick slack of a group's F·S
(its last width), a stage's spread over depths or kernels, a block mixing its tied and
untied variants, or a size off its grid (each rated by its estimated effect on the bound,
times what splitting it has gained per unit of that estimate so far: pseudo-costs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from archdesign.optimize.posynomial import Model, Tie
from archdesign.optimize.relaxation import HullRelaxation, NodeBox, Solution

# Before any split is measured, branching weighs a group's McCormick slack (the bound's
# own over-estimate) this much more than the spread estimates of depths, kernels and grid
# rounding, which over-state what integrality costs the bound by about an order of
# magnitude (measured on the ResNet problems: fixing every F at its relaxed value drops
# the open nodes' bounds below the incumbent; forcing integral depths barely moves them).
F_SLACK_PRIORITY = 10.0

# A branching candidate: (kind, index, what its estimate measures: "slack" or "spread").
Key = tuple[str, int, str]


@dataclass
class PseudoCosts:
    """What splitting each candidate has gained: the drop of the larger child bound below
    its parent's, per unit of the estimate that chose it. A candidate not yet split is
    rated at the average over all splits (1 before the first)."""

    gain: dict[Key, float] = field(default_factory=dict)
    estimate: dict[Key, float] = field(default_factory=dict)

    def ratio(self, key: Key) -> float:
        if self.estimate.get(key, 0.0) > 0:
            return self.gain[key] / self.estimate[key]
        total = sum(self.estimate.values())
        return sum(self.gain.values()) / total if total > 0 else 1.0

    def record(self, key: Key, estimate: float, gain: float) -> None:
        self.gain[key] = self.gain.get(key, 0.0) + gain
        self.estimate[key] = self.estimate.get(key, 0.0) + estimate


@dataclass
class Split:
    """A split waiting for its children's bounds (shared by the children)."""

    key: Key
    estimate: float
    parent: float  # the parent's bound
    pending: int  # children still to bound
    best: float = -math.inf  # the largest child bound so far

    def report(self, bound: float, costs: PseudoCosts, lower: float) -> None:
        """A child's bound (-inf: empty, or nothing in it beats the incumbent); with the
        last one, the split's gain goes to ``costs``. Splits that empty every child count
        their parent's bound down to the incumbent's score ``lower`` (none without one), and
        a parent the solver failed on (no finite bound) measures nothing."""
        self.pending -= 1
        self.best = max(self.best, bound)
        top = self.best if self.best > -math.inf else lower
        if self.pending == 0 and top > -math.inf and math.isfinite(self.parent):
            costs.record(self.key, self.estimate, max(self.parent - top, 0.0))


@dataclass
class Node:
    combo: int
    lo: tuple[int, ...]  # grid index bounds of every size variable
    hi: tuple[int, ...]
    depths: tuple[tuple[int, ...], ...]  # candidate values of every depth parameter
    kernels: tuple[tuple[int, ...], ...]  # candidate choice indices of every kernel param
    ties: tuple[tuple[Tie, bool], ...] = ()  # (tie, its widths equal) decided
    bound: float = math.inf
    sol: Solution | None = None
    origin: Split | None = None  # the split that made the node, until it is bounded

    def child(self, **changes: Any) -> Node:
        return replace(self, bound=math.inf, sol=None, origin=None, **changes)

    def is_leaf(self) -> bool:
        return (self.lo == self.hi and all(len(d) == 1 for d in self.depths)
                and all(len(k) == 1 for k in self.kernels))


def split(node: Node, m: Model, relax: HullRelaxation, box: NodeBox,
          log_grids: list[np.ndarray], costs: PseudoCosts) -> tuple[list[Node], Key, float]:
    """Split the node where its relaxation is loosest: the McCormick slack of a group's
    F·S, a stage's spread over depths or kernels, or a size off its grid, each estimate
    weighed by its pseudo-cost. The parts, the candidate split and its estimate."""
    sol = node.sol
    assert sol is not None
    f, s_vals = relax.group_values(sol.z, sol.weights, sol.copies)
    planes = relax.plane_bounds(box)
    weight = relax.stage_weights(f)
    grad = relax.gradient(sol.weights, f, s_vals)
    first, rep = relax.marginals(sol.weights)
    tied = relax.tied_weight(sol.weights)
    # (impact, kind, index, split point, what the impact measures)
    cands: list[tuple[float, str, int, float, str]] = []
    f_lo, f_hi, s_lo, s_hi = planes
    for g, grp in enumerate(relax.groups):
        over = min(f_hi[g] * s_vals[g] + s_lo[g] * f[g] - f_hi[g] * s_lo[g],
                   f_lo[g] * s_vals[g] + s_hi[g] * f[g] - f_lo[g] * s_hi[g])
        slack = relax.alpha[g] * max(over - f[g] * s_vals[g], 0.0)
        var = grp["var"]
        if var is not None and node.hi[var] > node.lo[var]:
            cands.append((F_SLACK_PRIORITY * slack, "size", var, float(sol.z[var]),
                          "slack"))
    for s in range(m.num_stages):
        j = m.stage_depth[s][0]
        if j is not None and len(node.depths[j]) > 1:
            d_bar = float(sol.depth[s])
            spread = sum(w * abs(d - d_bar) for d, w in rep[s].items())
            impact = weight[s] * relax.repeat_entropy(s, sol.z) * spread
            impact += 1e-9 * (node.depths[j][-1] - node.depths[j][0])
            cands.append((impact, "depth", j, d_bar, "spread"))
        kp = m.stage_kernel[s]
        if kp is not None and len(node.kernels[kp]) > 1:
            impact = weight[s] * (1 - max(first[s].values())) * \
                relax.kernel_entropy_gap(s, node.kernels[kp], float(sol.depth[s]))
            cands.append((impact + 1e-10, "kernel", kp, 0.0, "spread"))
    decided = dict(node.ties)
    for t, (tie, share) in enumerate(tied.items()):
        if tie not in decided:  # tied and untied variants mixed: decide which
            s = tie.stage
            impact = weight[s] * relax.repeat_entropy(s, sol.z) * min(share, 1 - share)
            cands.append((impact, "tie", t, 0.0, "spread"))
    for i in range(m.n):
        if node.hi[i] > node.lo[i]:
            g_i = log_grids[i]
            below = g_i[int(np.searchsorted(g_i, sol.z[i] + 1e-9, side="right")) - 1]
            impact = abs(float(grad[i])) * (float(sol.z[i]) - below)
            impact += 1e-12 * (node.hi[i] - node.lo[i])
            cands.append((impact, "size", i, float(sol.z[i]), "spread"))
    impact, kind, j, at_value, measure = max(
        cands, key=lambda c: (c[0] * costs.ratio((c[1], c[2], c[4])), c[0]))
    return _parts(node, m, log_grids, kind, j, at_value), (kind, j, measure), impact


def _parts(node: Node, m: Model, log_grids: list[np.ndarray], kind: str, j: int,
           at_value: float) -> list[Node]:
    """The node split on candidate (kind, j) at ``at_value`` (a tie: ``m.ties[j]``)."""
    if kind == "size":
        lo_i, hi_i = node.lo[j], node.hi[j]
        at = int(np.searchsorted(log_grids[j], at_value + 1e-9, side="right")) - 1
        quarter = (hi_i - lo_i) // 4
        at = min(max(at, lo_i + quarter), hi_i - 1 - quarter)
        return [node.child(lo=replace_at(node.lo, j, a), hi=replace_at(node.hi, j, b))
                for a, b in ((lo_i, at), (at + 1, hi_i))]
    if kind == "depth":
        cands = node.depths[j]
        half = sum(1 for c in cands if c <= at_value)
        quarter = max(len(cands) // 4, 1)
        half = min(max(half, quarter), len(cands) - quarter)
        return [node.child(depths=replace_at(node.depths, j, part))
                for part in (cands[:half], cands[half:])]
    if kind == "tie":
        return [node.child(ties=(*node.ties, (m.ties[j], same))) for same in (True, False)]
    cands = node.kernels[j]
    half = len(cands) // 2
    return [node.child(kernels=replace_at(node.kernels, j, part))
            for part in (cands[:half], cands[half:])]


def replace_at(items: tuple[Any, ...], index: int, value: Any) -> tuple[Any, ...]:
    return (*items[:index], value, *items[index + 1:])
