"""The DeepMAD program over RegNet's quantized-linear space, solved by exact enumeration.

RegNet (Radosavovic et al. 2020) draws block j's width from the line u_j = w0 + wa·j,
quantized in log space: t_j = log(u_j/w0)/log(wm) = log(1 + j/x)/log(wm) with x = w0/wa,
level k_j = round(t_j), width round_q(w0·wm^k_j); blocks of equal width form a stage. The
continuous (wa, wm) therefore give finitely many networks, and this module lists them all.

A network is a set of occupied levels 0 = k_0 < k_1 < ... and the first block n_i of each
(levels may be skipped: a fast ramp jumps over them). It is realized exactly where

    (n_i - 1)/c_{k_{i-1}+1}(wm) < x <= n_i/c_{k_i}(wm)  for every i >= 1,
    (depth - 1)/c_{k_last+1}(wm) < x,     x in [w0/wa_max, w0/wa_min],

with c_k(wm) = wm^(k - 1/2) - 1 (block j reaches level k when x <= j/c_k). Each pair of a
lower and an upper bound on x is a condition on wm alone, and because c_b/c_a is
increasing in wm for b > a, each is a half-line: the wm where a network exists is one
interval, found by comparing ratios of c at roots solved once per distinct value. Inside
it, the stage widths change where a rounding to q flips, so the networks of one level
pattern are a chain of cells ordered by wm along which every width grows. Networks found
only on the boundary of a cell (a rounding tie, a set of measure zero) are not listed;
every listed network is decoded from a point inside its cell.

Every network's figures are sums over its blocks: the stem, each stage's first block, its
repeated block (times depth - 1) and the head, each block's figures (costs, latency share,
DeepMAD entropy terms) found once per distinct block with the batched expansion
(:meth:`Problem.block_figures`). The DeepMAD score and ρ follow from the groups (one per
stage after the stem's). This additive model is checked against the exact evaluation at
sampled networks and at the design; the optimum over all networks and every outer
choice (depth, w0, group width, bottleneck ratio, SE, resolution) is then certified with
gap 0.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from archdesign.block_kinds import BlockArgs
from archdesign.cost import dtype_bytes
from archdesign.errors import InputError
from archdesign.layers import block_key, block_runs
from archdesign.objectives import DeepMAD
from archdesign.optimize.posynomial import ModelingError, other_assignments
from archdesign.optimize.problem import Evaluation, Problem
from archdesign.spaces import Parameter, RegNetSpace, Value, adjust_block_compatibility
from archdesign.spec import ArchSpec

# Bisection steps for a root of c_b/c_a (far below any width rounding's resolution).
_ROOT_STEPS = 64
# Networks at which the block model is checked against the exact evaluation, per outer
# assignment (and at the design).
VERIFY_SAMPLES = 2
# Largest relative difference allowed between the additive model and the exact figures
# (float sums in another order).
_MODEL_TOLERANCE = 1e-9


def _c(k: Any, wm: Any) -> Any:
    """c_k(wm) = wm^(k - 1/2) - 1: block j is at level >= k where x <= j/c_k."""
    return np.power(wm, np.asarray(k, float) - 0.5) - 1.0


@lru_cache(maxsize=1024)
def _ratio_roots(low: int, high: int, lo: float, hi: float, size: int) -> np.ndarray:
    """R[a, b]: the wm in [lo, hi] where c_high/c_low = a/b (high > low >= 1: the ratio
    increases with wm), for a, b < ``size``; -inf where the ratio exceeds a/b all over,
    +inf where it stays below (b = 0: +inf)."""
    a, b = np.meshgrid(np.arange(size, dtype=float), np.arange(size, dtype=float),
                       indexing="ij")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(b > 0, a / np.maximum(b, 1), np.inf)
    r_lo = _c(high, lo) / _c(low, lo)
    r_hi = _c(high, hi) / _c(low, hi)
    left = np.full(value.shape, lo)
    right = np.full(value.shape, hi)
    for _ in range(_ROOT_STEPS):
        m = 0.5 * (left + right)
        below = _c(high, m) / _c(low, m) < value
        left = np.where(below, m, left)
        right = np.where(below, right, m)
    root = 0.5 * (left + right)
    return np.where(value <= r_lo, -np.inf, np.where(value >= r_hi, np.inf, root))


@dataclass(frozen=True)
class Ranges:
    """Where wa and wm may lie (a closed interval each, or finite values), the width
    quantum, the number of stages and the deepest network."""

    wa: tuple[float, float]
    wm_values: tuple[float, ...] | None  # None: the interval wm_range
    wm_range: tuple[float, float]
    wa_values: tuple[float, ...] | None  # None: the interval wa
    q: int
    stages: int
    max_depth: int


def enumerable(space: object) -> bool:
    """Whether the designer lists every network of ``space`` (a RegNet space of a set
    number of stages): its design's front then holds every non-dominated network."""
    return isinstance(space, RegNetSpace) and space.num_stages is not None


def _ranges(space: RegNetSpace, held: dict[str, Value]) -> Ranges:
    def interval(p: Parameter) -> tuple[tuple[float, float], tuple[float, ...] | None]:
        if p.name in held:
            v = float(held[p.name])
            return (v, v), (v,)
        if math.isinf(p.count) and p.low is not None and p.high is not None:
            return (p.low, p.high), None
        values = tuple(float(v) for v in p.values())
        return (min(values), max(values)), values

    wa, wa_values = interval(space.parameter("wa"))
    wm, wm_values = interval(space.parameter("wm"))
    stages = space.num_stages
    if stages is None:
        raise ModelingError(f"space {space.name!r}: the RegNet designer needs num_stages")
    depth = int(held.get("depth", max(int(v) for v in space.parameter("depth").values())))
    return Ranges(wa, wm_values, wm, wa_values, space.quantum, stages, depth)


@dataclass(frozen=True)
class Networks:
    """Networks of a RegNet space, one row each (a cell of (wa, wm)); rows of one chain
    (same depth, w0, levels and block counts) are consecutive, by increasing wm."""

    depth: np.ndarray  # (n,)
    w0: np.ndarray  # (n,)
    widths: np.ndarray  # (n, stages): stage widths, before group compatibility
    depths: np.ndarray  # (n, stages)
    wa: np.ndarray  # (n,): a point inside the row's cell, which decodes to the network
    wm: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.depth)


def _level_sets(top: int, length: int, jump_ok: Any) -> list[tuple[int, ...]]:
    """Occupied levels (0, k_1, ..., k_{length-1}) up to ``top``: k_1 any level (the first
    stage may hold one block), later levels k + 1 or a jump ``jump_ok`` allows."""
    out: list[tuple[int, ...]] = []

    def grow(levels: tuple[int, ...]) -> None:
        if len(levels) == length:
            out.append(levels)
            return
        k = levels[-1]
        for nxt in range(k + 1, top + 1):
            if nxt == k + 1 or jump_ok(k + 1, nxt) or k == 0:
                grow((*levels, nxt))

    grow((0,))
    return out


def _realizable(depth: int, w0: int, r: Ranges) -> list[tuple[tuple[int, ...], np.ndarray,
                                                               np.ndarray, np.ndarray]]:
    """(levels, first blocks n_1.. per row, wm low, wm high) of every level pattern of
    ``depth`` blocks from ``w0`` that some (wa, wm) in the ranges realizes: on an open wm
    interval, or (finite wm values) at some value strictly inside it."""
    x_lo = w0 / r.wa[1]
    x_hi = w0 / r.wa[0] if r.wa[0] > 0 else math.inf
    m_lo, m_hi = r.wm_range
    if m_lo <= 1:
        raise ModelingError("RegNet wm must exceed 1")
    top = round(math.log1p((depth - 1) / x_lo) / math.log(m_lo)) + 1 if depth > 1 else 1
    # a jump from level k to k' > k + 1 at a first block n >= 2 needs
    # c_k'/c_{k+1} < n/(n - 1) <= 2 at some wm, so at wm_low (the ratio grows with wm)
    def jump_ok(a: int, b: int) -> bool:
        return bool(_c(b, m_lo) / _c(a, m_lo) < 2.0)

    # two occupied levels of equal rounded width are one stage: patterns with as many
    # more levels than stages as they have such pairs are tried
    def merges(levels: tuple[int, ...]) -> int:
        return sum(_mergeable(w0, a, b, r) for a, b in itertools.pairwise(levels))

    out = []
    for length in range(r.stages, depth + 1):
        patterns = [levels for levels in _level_sets(top, length, jump_ok)
                    if merges(levels) >= length - r.stages]
        if not patterns:
            break
        counts = np.array(list(itertools.combinations(range(1, depth), length - 1)),
                          dtype=np.int64).reshape(-1, length - 1)
        for levels in patterns:
            n = counts
            # a jump into level k_i needs n_i = 1 unless jump_ok; prune before solving
            for i in range(1, length):
                if levels[i] > levels[i - 1] + 1 and not jump_ok(levels[i - 1] + 1, levels[i]):
                    n = n[n[:, i - 1] == 1]
            if not len(n):
                continue
            lo, hi = _wm_interval(levels, n, depth, x_lo, x_hi, m_lo, m_hi, r.max_depth)
            if r.wm_values is None:
                lo, hi = np.maximum(lo, m_lo), np.minimum(hi, m_hi)
                keep = lo < hi
            else:
                vals = np.array(r.wm_values)
                keep = ((vals[None, :] > lo[:, None]) & (vals[None, :] < hi[:, None])).any(1)
            if keep.any():
                out.append((levels, n[keep], lo[keep], hi[keep]))
    return out


def _wm_interval(levels: tuple[int, ...], n: np.ndarray, depth: int, x_lo: float,
                 x_hi: float, m_lo: float, m_hi: float, max_depth: int,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per row of first blocks ``n``, the open wm interval (low, high) within which some x
    in [x_lo, x_hi] realizes the pattern, exact inside [m_lo, m_hi] (low >= high: nowhere).
    Every pair of a lower and an upper bound on x is a half-line in wm."""
    rows = len(n)
    lowers = [(n[:, i - 1] - 1, levels[i - 1] + 1) for i in range(1, len(levels))]
    lowers.append((np.full(rows, depth - 1), levels[-1] + 1))
    uppers = [(n[:, i - 1], levels[i]) for i in range(1, len(levels))]
    lo = np.full(rows, -np.inf)
    hi = np.full(rows, np.inf)
    if x_hi < math.inf:  # p/c_a(wm) < x_hi: wm > (1 + p/x_hi)^(1/(a - 1/2))
        for p, a in lowers:
            lo = np.maximum(lo, np.power(1 + p / x_hi, 1 / (a - 0.5)))
    for q, b in uppers:  # x_lo <= q/c_b(wm)
        hi = np.minimum(hi, np.power(1 + q / x_lo, 1 / (b - 0.5)))
    size = max_depth + 1
    for p, a in lowers:
        for q, b in uppers:
            if a == b:  # p < q, or block 0's bound (p = 0: none)
                hi = np.where((p > 0) & (p >= q), -np.inf, hi)
            elif b > a:  # p·c_b < q·c_a  <=>  c_b/c_a < q/p  <=>  wm < root
                hi = np.minimum(hi, _ratio_roots(a, b, m_lo, m_hi, size)[q, p])
            else:  # c_a/c_b > p/q  <=>  wm > root
                lo = np.maximum(lo, _ratio_roots(b, a, m_lo, m_hi, size)[p, q])
    return lo, hi


def _cells(depth: int, w0: int, r: Ranges) -> Networks:
    """Every network of ``depth`` blocks from ``w0`` (``r.wa`` one interval)."""
    x_lo = w0 / r.wa[1]
    x_hi = w0 / r.wa[0] if r.wa[0] > 0 else math.inf
    parts: list[tuple[np.ndarray, ...]] = []
    for levels, n, lo, hi in _realizable(depth, w0, r):
        if r.wm_values is None:  # the cells: where a rounding of a stage's width flips
            flips = np.unique(np.concatenate([_flips(w0, k, r.q, lo.min(), hi.max())
                                              for k in levels[1:]]))
            start = np.searchsorted(flips, lo, "right")
            end = np.searchsorted(flips, hi, "left")
            count = end - start + 1
            row = np.repeat(np.arange(len(n)), count)
            c = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
            edges = np.concatenate([flips, [np.inf]])
            left = np.where(c == 0, lo[row], edges[np.minimum(start[row] + c - 1,
                                                               len(flips))])
            right = np.where(c == count[row] - 1, hi[row],
                             edges[np.minimum(start[row] + c, len(flips))])
            wm = 0.5 * (left + right)
        else:
            values = np.array(r.wm_values)
            inside = (values[None, :] > lo[:, None]) & (values[None, :] < hi[:, None])
            row, which = np.nonzero(inside)
            wm = values[which]
        n = n[row]
        # a point of x = w0/wa inside the cell: between the largest lower and the smallest
        # upper bound at this wm (the pattern's inequalities)
        lower = np.full(len(wm), x_lo)
        upper = np.full(len(wm), x_hi)
        for i in range(1, len(levels)):
            lower = np.maximum(lower, (n[:, i - 1] - 1) / _c(levels[i - 1] + 1, wm))
            upper = np.minimum(upper, n[:, i - 1] / _c(levels[i], wm))
        lower = np.maximum(lower, (depth - 1) / _c(levels[-1] + 1, wm))
        x = np.where(np.isinf(upper), 2 * lower + 1, 0.5 * (lower + upper))
        wa = w0 / x if x_lo < x_hi else np.full(len(wm), r.wa[0])
        widths = np.stack([np.round(w0 * np.power(wm, k) / r.q) * r.q for k in levels],
                          axis=1).astype(np.int64)
        bounds = np.concatenate([np.zeros((len(n), 1), np.int64), n,
                                 np.full((len(n), 1), depth)], axis=1)
        counts = np.diff(bounds, axis=1)
        # levels of equal rounded width are one stage
        new = np.concatenate([np.ones((len(n), 1), bool), widths[:, 1:] != widths[:, :-1]],
                             axis=1)
        stage_of = np.cumsum(new, axis=1) - 1
        keep = stage_of[:, -1] == r.stages - 1
        stage_widths = np.zeros((len(n), r.stages), np.int64)
        stage_depths = np.zeros((len(n), r.stages), np.int64)
        rows = np.arange(len(n))
        for i in range(len(levels)):
            s = np.minimum(stage_of[:, i], r.stages - 1)
            stage_widths[rows, s] = widths[:, i]
            stage_depths[rows, s] += counts[:, i]
        parts.append((stage_widths[keep].astype(np.int32), stage_depths[keep].astype(np.int16),
                      wa[keep], wm[keep]))
    if not parts:
        return _empty(r.stages)
    widths_, depths_, wa_, wm_ = (np.concatenate(p) for p in zip(*parts, strict=True))
    size = len(wa_)
    return Networks(np.full(size, depth, np.int16), np.full(size, w0, np.int32), widths_,
                    depths_, wa_, wm_)


def _empty(stages: int) -> Networks:
    return Networks(np.zeros(0, np.int64), np.zeros(0, np.int64),
                    np.zeros((0, stages), np.int64), np.zeros((0, stages), np.int64),
                    np.zeros(0), np.zeros(0))


@lru_cache(maxsize=4096)
def _mergeable(w0: int, a: int, b: int, r: Ranges) -> bool:
    """Whether levels a < b can round to the same width at some wm of the ranges (away
    from rounding ties)."""
    low = min(r.wm_values) if r.wm_values is not None else r.wm_range[0]
    if w0 * low ** a * (low ** (b - a) - 1) >= r.q:  # they differ by q or more everywhere
        return False
    if r.wm_values is not None:
        wm = np.array(r.wm_values)
    else:
        lo, hi = r.wm_range
        edges = np.unique(np.concatenate([[lo, hi], _flips(w0, a, r.q, lo, hi),
                                          _flips(w0, b, r.q, lo, hi)]))
        wm = 0.5 * (edges[1:] + edges[:-1])
    return bool((np.round(w0 * wm ** a / r.q) == np.round(w0 * wm ** b / r.q)).any())


def _flips(w0: int, k: int, q: int, m_lo: float, m_hi: float) -> np.ndarray:
    """The wm in (m_lo, m_hi) where round(w0·wm^k/q) changes (level 0: none)."""
    if k == 0:
        return np.zeros(0)
    first = math.floor(w0 * m_lo ** k / q - 0.5) + 1
    last = math.ceil(w0 * m_hi ** k / q - 0.5) - 1
    m = np.arange(first, last + 1, dtype=float)
    return np.power((m + 0.5) * q / w0, 1.0 / k)


def networks(space: RegNetSpace, held: dict[str, Value]) -> Networks:
    """Every network of the space's (depth, w0, wa, wm), parameters in ``held`` fixed;
    memoized per space and held values."""
    return _networks(space, tuple(sorted((k, held[k]) for k in ("depth", "w0", "wa", "wm")
                                         if k in held)))


@lru_cache(maxsize=8)
def _networks(space: RegNetSpace, held_items: tuple[tuple[str, Value], ...]) -> Networks:
    held = dict(held_items)
    r = _ranges(space, held)
    depths = (held["depth"],) if "depth" in held else space.parameter("depth").values()
    starts = (held["w0"],) if "w0" in held else space.parameter("w0").values()
    was = [(v, v) for v in r.wa_values] if r.wa_values is not None else [r.wa]
    parts = [_cells(int(d), int(w0), replace(r, wa=wa))
             for d in depths for w0 in starts for wa in was]
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty(r.stages)
    return Networks(*(np.concatenate([getattr(p, f) for p in parts])
                      for f in ("depth", "w0", "widths", "depths", "wa", "wm")))


def row_ids(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a non-negative integer array and each row's index among them
    (rows packed into one integer where they fit, else sorted lexicographically)."""
    if not len(a):
        return a, np.zeros(0, np.int64)
    radix = int(a.max()) + 1
    if radix ** a.shape[1] < 1 << 62:
        key = np.zeros(len(a), np.int64)
        for column in a.T:
            key = key * radix + column
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return a[first], inverse.reshape(-1)
    order = np.lexsort(a.T[::-1])
    ordered = a[order]
    new = np.ones(len(a), bool)
    new[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(len(a), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


# -- the figures of every network: sums over blocks ------------------------------------------


@dataclass
class _Shared:
    """What every outer choice shares: the networks, their distinct width vectors and
    depth tuples."""

    nets: Networks
    vectors: np.ndarray  # (m, stages) distinct stage widths
    vector: np.ndarray  # (n,) each network's row of vectors
    tuples: np.ndarray  # (t, stages) distinct stage depths
    tuple_of: np.ndarray  # (n,)
    order: np.ndarray  # (n,) the networks grouped by vector
    starts: np.ndarray  # (m,) where each vector's networks start in ``order``
    shallowest: np.ndarray  # (m, stages) the least depth of each stage over a vector's
    deepest: np.ndarray  # (m, stages)    networks, and the most

    def rows_of(self, vectors: np.ndarray) -> np.ndarray:
        """The networks of ``vectors``, in order."""
        ends = np.append(self.starts[1:], len(self.order))
        count = ends[vectors] - self.starts[vectors]
        offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        return np.sort(self.order[np.repeat(self.starts[vectors], count) + offset])


class ComboModel:
    """Every network's figures at one assignment of the outer choices (group width,
    bottleneck ratio, SE ratio, resolution): per distinct width vector, the figures of its
    fixed blocks (stem, each stage's first block, head) and of each stage's repeated block;
    a network adds depth - 1 repeats per stage."""

    def __init__(self, problem: Problem, objective: DeepMAD, shared: _Shared,
                 combo: dict[str, Value], template: ArchSpec,
                 penalties: tuple[np.ndarray, np.ndarray]) -> None:
        self.problem = problem
        self.objective = objective
        self.shared = shared
        self.combo = combo
        v = shared.vectors
        stages = v.shape[1]
        # group compatibility, width by width (pycls adjust_block_compatibility)
        distinct, at = np.unique(v, return_inverse=True)
        widths, group_widths = adjust_block_compatibility(
            [int(w) for w in distinct], float(combo["bottleneck"]), int(combo["group_w"]))
        w = np.array(widths, np.int64)[at.reshape(v.shape)]
        g = np.array(group_widths, np.int64)[at.reshape(v.shape)]
        self.monotone = (np.diff(w, axis=1) >= 0).all(axis=1)
        runs = block_runs(replace(template, stages=tuple(replace(st, depth=2)
                                                          for st in template.stages)))
        stem, head = runs[0], runs[-1]
        firsts = [BlockArgs(*r.args) for r in runs[1:-1] if r.first == 0]
        rests = [BlockArgs(*r.args) for r in runs[1:-1] if r.first == 1]
        keys: list[tuple[Any, ...]] = [block_key(stem.fn, stem.args)]
        first = np.zeros(v.shape, np.int64)
        rest = np.zeros(v.shape, np.int64)
        for s in range(stages):
            c_in = w[:, s - 1] if s else np.full(len(w), firsts[0].c_in)
            for out, template_args, columns in ((first, firsts[s], (c_in, w[:, s], g[:, s])),
                                                (rest, rests[s], (w[:, s], w[:, s], g[:, s]))):
                distinct_rows, where = row_ids(np.stack(columns, axis=1))
                out[:, s] = len(keys) + where
                keys.extend(_stage_keys(template_args, distinct_rows))
        heads, where = np.unique(w[:, -1], return_inverse=True)
        last = len(keys) + where.reshape(-1)
        keys.extend(block_key(head.fn, (b, *head.args[1:])) for b in heads.tolist())
        fig = problem.block_figures(keys)
        if fig["convs"][last].any():
            raise ModelingError("the RegNet designer's groups assume a head without convs")
        self.first_fig = {k: col[first] for k, col in fig.items()}  # (m, stages)
        self.rest_fig = {k: col[rest] for k, col in fig.items()}
        self.fixed = {k: col[0] + col[first].sum(axis=1) + col[last]
                      for k, col in fig.items()}  # (m,): stem + first blocks + head
        self.peak_fixed = np.maximum(fig["peak"][first].max(axis=1),
                                     np.maximum(fig["peak"][0], fig["peak"][last]))
        self.stem = {k: float(col[0]) for k, col in fig.items()}
        # DeepMAD groups: the stem's, then one per stage (each opens with a stride-2 block)
        stem_out = stem.fn(*stem.args)[-1]
        sizes = [r.h for r in rests]
        feature = np.empty((len(w), stages + 1))
        feature[:, 0] = math.log(stem_out.c_out) + 2 * math.log(stem_out.h_out)
        feature[:, 1:] = np.log(w) + 2 * np.log(np.array(sizes, float))
        alpha = np.array(objective.alpha_for(stages + 1))
        # score = Σ_g α_g·F_g·S_g, S_g the entropy up to group g: each repeat of stage s
        # adds its entropy times Ω_s = Σ_{g > s} α_g·F_g (groups from the stem's, 0)
        weight = np.cumsum((alpha * feature)[:, ::-1], axis=1)[:, ::-1]
        entropy0 = np.concatenate([np.full((len(w), 1), self.stem["entropy"]),
                                   self.first_fig["entropy"]], axis=1)
        entropy0[:, -1] += self.fixed["entropy"] - entropy0.sum(axis=1)  # the head's terms
        self.score0 = (weight * entropy0).sum(axis=1)  # every stage one block deep
        self.score_step = weight[:, 1:] * self.rest_fig["entropy"]  # (m, stages)
        self.resolution_ok = not problem.rules.kernel_violations(template)
        self.penalty, self.least_penalty = penalties

    def figures(self, rows: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Figures of the networks ``rows``: any of flops, params, activations,
        peak_activation_bytes, latency_ms, rho, score."""
        sh = self.shared
        vid = sh.vector[rows]
        extra = sh.nets.depths[rows] - 1  # repeats per stage
        out: dict[str, np.ndarray] = {}
        for name in names:
            if name in ("flops", "params", "activations", "latency_ms"):
                out[name] = self.fixed[name][vid] + (extra * self.rest_fig[name][vid]).sum(1)
                if name == "latency_ms":
                    assert self.problem.latency is not None
                    out[name] = out[name] + self.problem.latency.network_constant()
            elif name == "peak_activation_bytes":
                rest_peak = np.where(extra > 0, self.rest_fig["peak"][vid], 0).max(axis=1)
                b = self.problem.budgets
                out[name] = np.maximum(self.peak_fixed[vid], rest_peak) * b.batch * \
                    dtype_bytes(b.dtype)
        if "rho" in names:  # ρ per group prefix: the stem's, then each stage's
            convs, sum_log = (
                np.cumsum(np.concatenate([np.full((len(rows), 1), self.stem[k]),
                                          self.first_fig[k][vid] + extra * self.rest_fig[k][vid]],
                                         axis=1), axis=1)
                for k in ("convs", "sum_log"))
            with np.errstate(divide="ignore", invalid="ignore"):
                rho = np.where(convs > 0, convs / np.exp(sum_log / np.maximum(convs, 1)), 0.0)
            out["rho"] = rho.max(axis=1)
        if "score" in names:
            out["score"] = self.score0[vid] + (extra * self.score_step[vid]).sum(axis=1) - \
                self.penalty[sh.tuple_of[rows]]
        return out

    def candidates(self, figure: str | None, front: tuple[np.ndarray, np.ndarray],
                   ) -> np.ndarray:
        """The width vectors that may hold a network within the summed budgets that no
        network found so far dominates: ``front`` is (``figure`` ascending, the best score
        at or below it) of those found (``figure`` None: the best score at any). Bounds
        over each vector's depth ranges: every figure is linear in the depths; the
        penalty is taken at its least over them."""
        sh = self.shared
        low, high = sh.shallowest - 1, sh.deepest - 1

        def least(step: np.ndarray) -> np.ndarray:
            return np.where(step > 0, low, high) * step

        def floor(name: str) -> np.ndarray:
            constant = self.problem.latency.network_constant() \
                if name == "latency_ms" and self.problem.latency is not None else 0.0
            return self.fixed[name] + least(self.rest_fig[name]).sum(axis=1) + constant

        alive = np.full(len(sh.vectors), self.resolution_ok)
        if self.problem.rules.monotone_widths:
            alive &= self.monotone
        for name, limit in self.problem.limits.items():
            if name in _SUMMED:
                alive &= floor(name) <= limit
        at, best = front
        # where the front may dominate: below the floor of a summed figure, anywhere
        # without a figure, nowhere for another figure (no floor known)
        reach = floor(figure) if figure in _SUMMED else np.full(
            len(alive), np.inf if figure is None else -np.inf)
        index = np.searchsorted(at, reach, "right") - 1
        beaten = np.where(index >= 0, best[np.maximum(index, 0)], -np.inf)
        top = self.score0 - least(-self.score_step).sum(axis=1) - self.least_penalty
        return np.flatnonzero(alive & (top > beaten))

    def best(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The networks among ``rows`` (of vectors that meet the design rules) that meet
        every budget, and their scores (each budget on the survivors of the last)."""
        for name, limit in self.problem.limits.items():
            rows = rows[self.figures(rows, (name,))[name] <= limit]
        return rows, self.figures(rows, ("score",))["score"]


def _stage_keys(template: BlockArgs, widths: np.ndarray) -> list[tuple[Any, ...]]:
    """Keys of ``template``'s block at each row's (c_in, c_out, group_width), plain tuples
    as :func:`~archdesign.layers.block_key` makes them."""
    fields = BlockArgs._fields
    if (fields.index("c_in"), fields.index("c_out"), fields.index("group_width")) != (1, 2, 9):
        raise ModelingError("the RegNet designer's block keys assume BlockArgs' field order")
    head, middle, tail = template[:1], template[3:9], template[10:]
    return [(*head, a, b, *middle, g, *tail) for a, b, g in widths.tolist()]


# the figures that are sums over blocks (a floor over a vector's depths bounds them)
_SUMMED = ("flops", "params", "activations", "latency_ms")
# Networks evaluated per slice (bounds the temporary arrays).
_CHUNK = 1 << 20


def _shared(space: RegNetSpace, held: dict[str, Value]) -> _Shared:
    nets = networks(space, held)
    vectors, vector = row_ids(nets.widths)
    tuples, tuple_of = row_ids(nets.depths)
    order = np.argsort(vector, kind="stable")
    starts = np.searchsorted(vector[order], np.arange(len(vectors)))
    depths = nets.depths[order]
    return _Shared(nets, vectors, vector, tuples, tuple_of, order, starts,
                   np.minimum.reduceat(depths, starts), np.maximum.reduceat(depths, starts))


def depth_penalties(objective: DeepMAD, shared: _Shared) -> tuple[np.ndarray, np.ndarray]:
    """DeepMAD's depth penalty of every distinct depth tuple, and its least over each width
    vector's networks."""
    penalty = np.array([objective.depth_penalty(t) for t in shared.tuples.tolist()])
    return penalty, np.minimum.reduceat(penalty[shared.tuple_of[shared.order]], shared.starts)


def network_params(nets: Networks, row: int, combo: dict[str, Value]) -> dict[str, Value]:
    """The space assignment of network ``row`` at outer choices ``combo``."""
    return {**combo, "depth": int(nets.depth[row]), "w0": int(nets.w0[row]),
            "wa": float(nets.wa[row]), "wm": float(nets.wm[row])}


@lru_cache(maxsize=4)
def _shared_memo(space: RegNetSpace, held_items: tuple[tuple[str, Value], ...]) -> _Shared:
    return _shared(space, dict(held_items))


# the parameters that set a network's blocks; the others are enumerated outside, a
# ComboModel each
_INNER = ("depth", "w0", "wa", "wm")
# Outer assignments (group width x bottleneck x SE x resolution) the designer takes on.
OUTER_LIMIT = 4096
# Best networks kept per outer assignment, recounted exactly in order until one passes.
_KEPT = 4


@dataclass
class Enumerated:
    """The optimum of a RegNet space and what the enumeration saw."""

    best: Evaluation
    networks: int  # (depth, w0, wa, wm) networks
    combos: int  # outer assignments enumerated
    evaluated: int  # (network, outer assignment) pairs counted by the block model
    complete: bool  # False: the time limit cut the enumeration
    front: list[dict[str, Value]]


def enumerate_space(problem: Problem, held: dict[str, Value], front_of: str | None = None,
                    deadline: float | None = None) -> Enumerated:
    """The best network of a RegNet space within the budgets, by counting every network
    with the additive block model (checked against the exact evaluation at sampled
    networks and at the optimum). ``deadline``: a ``time.perf_counter()`` value after which
    no further outer assignment is started."""
    space = problem.space
    objective = problem.objective
    if not isinstance(space, RegNetSpace) or not isinstance(objective, DeepMAD):
        raise ModelingError("the RegNet designer takes a RegNet space and the deepmad "
                            "objective")
    shared = _shared_memo(space, tuple(sorted((k, held[k]) for k in _INNER if k in held)))
    nets = shared.nets
    if not len(nets):
        raise InputError(f"space {space.name!r} has no network of {space.num_stages} stages "
                         f"with {held}")
    outer = [p for p in space.parameters if p.name not in _INNER and p.name not in held]
    combos = [{**c, **{k: v for k, v in held.items() if k not in _INNER}}
              for c in other_assignments(outer, OUTER_LIMIT)]
    penalties = depth_penalties(objective, shared)
    rng = np.random.default_rng(0)
    kept: list[tuple[float, int, int]] = []  # (score, combo, row)
    front: list[tuple[float, float, int, int]] = []  # (figure, score, combo, row)
    evaluated = 0
    complete = True
    done = 0
    for c, combo in enumerate(combos):
        if deadline is not None and c and time.perf_counter() > deadline:
            complete = False
            break
        done += 1
        template = space.decode(network_params(nets, 0, combo))
        model = ComboModel(problem, objective, shared, combo, template, penalties)
        _verify(model, rng.choice(len(nets), min(VERIFY_SAMPLES, len(nets)), replace=False))
        candidates = shared.rows_of(model.candidates(
            front_of, _front_arrays(kept, None if front_of is None else front)))
        for start in range(0, len(candidates), _CHUNK):
            rows, scores = model.best(candidates[start:start + _CHUNK])
            evaluated += min(_CHUNK, len(candidates) - start)
            top = np.argpartition(-scores, _KEPT)[:_KEPT] if len(scores) > _KEPT else \
                np.arange(len(scores))
            kept.extend((float(scores[i]), c, int(rows[i])) for i in top)
            kept.sort(key=lambda t: (-t[0], t[1], t[2]))
            del kept[_KEPT:]
            if front_of is not None and len(rows):
                figure = model.figures(rows, (front_of,))[front_of]
                at, reached = _front_arrays(kept, front)
                index = np.searchsorted(at, figure, "right") - 1  # what the front has
                new = np.flatnonzero(scores > np.where(index >= 0,  # at or below each figure
                                                       reached[np.maximum(index, 0)], -np.inf))
                front.extend((float(figure[i]), float(scores[i]), c, int(rows[i]))
                             for i in new[_non_dominated(figure[new], scores[new])])
                front = [front[i] for i in _non_dominated(np.array([t[0] for t in front]),
                                                          np.array([t[1] for t in front]))]
    best: Evaluation | None = None
    for score, c, row in kept:
        found = problem.evaluate(network_params(nets, row, combos[c]))
        _agree(found.score, score, "score", found.params)
        if found.feasible:
            best = found
            break
    if best is None:
        raise InputError(f"no network of space {space.name!r} fits the budgets "
                         f"{problem.budgets.items()} and the design rules (all "
                         f"{len(nets)} (depth, w0, wa, wm) networks x {len(combos)} "
                         f"assignments of the other parameters counted)")
    params = [network_params(nets, row, combos[c])
              for _, _, c, row in sorted(front, key=lambda t: (t[0], -t[1]))]
    return Enumerated(best, len(nets), done, evaluated, complete, params)


def _front_arrays(kept: list[tuple[float, int, int]],
                  front: list[tuple[float, float, int, int]] | None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(figure ascending, best score at or below it) of the front found so far; without a
    front (None), the best score found at any figure."""
    if front is None:
        return np.array([-np.inf]), np.array([kept[0][0] if kept else -np.inf])
    if not front:
        return np.array([-np.inf]), np.array([-np.inf])
    ordered = sorted(front)
    return (np.array([t[0] for t in ordered]),
            np.maximum.accumulate(np.array([t[1] for t in ordered])))


def _non_dominated(figure: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the points no other beats on both a lower figure and a higher score."""
    order = np.lexsort((-score, figure))
    best = np.maximum.accumulate(score[order])
    keep = np.ones(len(order), bool)
    keep[1:] = score[order][1:] > best[:-1]
    return order[keep]


def _agree(exact: float, model: float, name: str, params: dict[str, Value]) -> None:
    if abs(model - exact) > _MODEL_TOLERANCE * max(1.0, abs(exact)):
        raise ModelingError(f"the RegNet block model gives {name} {model:.10g} where the "
                            f"exact evaluation gives {exact:.10g} at {params}")


def _verify(model: ComboModel, rows: np.ndarray) -> None:
    """The block model's figures and score must be the exact ones at ``rows``."""
    problem = model.problem
    names = (*problem.limits, "score")
    got = model.figures(rows, tuple(dict.fromkeys(("flops", "params", "rho", *names))))
    for i, row in enumerate(rows.tolist()):
        params = network_params(model.shared.nets, row, model.combo)
        spec = problem.space.decode(params)
        exact = {**problem.figures(spec), "score": model.objective.score(spec)}
        for name, values in got.items():
            _agree(exact[name], float(values[i]), name, params)
