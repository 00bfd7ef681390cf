"""Pareto fronts and hypervolume over minimization objectives.

Everything here works on an ``(n, d)`` array of objective values already turned into
minimization (negate what is maximized). Hypervolume is measured in a normalized frame:
each objective is mapped linearly so that its *ideal* value is 0 and its *reference*
(worst acceptable) value is 1, and the volume of the union of boxes between each point
and the all-ones corner is computed exactly. A fixed frame makes hypervolumes of
different runs (and of one run over time) comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (all minimized).

    A row is dominated if another is <= in every objective and < in one. Duplicated rows
    are all kept: none dominates the other.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort(values.T[::-1])  # by the first objective, ties by the next ones
    sorted_vals = values[order]
    keep = np.zeros(n, dtype=bool)
    if values.shape[1] == 2:
        # Lexicographic order: a row is on the front iff its second objective beats every
        # earlier row's, or it repeats the last front row exactly.
        best = np.inf
        last: np.ndarray | None = None
        for i, (x, y) in enumerate(sorted_vals):
            if y < best or (last is not None and x == last[0] and y == last[1]):
                keep[i] = True
                best = min(best, y)
                last = sorted_vals[i]
    else:
        front = np.empty((0, values.shape[1]))
        for i, row in enumerate(sorted_vals):
            # Only a row earlier in lexicographic order can dominate this one.
            if not np.any(np.all(front <= row, axis=1) & np.any(front < row, axis=1)):
                keep[i] = True
                front = np.vstack([front, row])
    mask = np.zeros(n, dtype=bool)
    mask[order[keep]] = True
    return mask


def pareto_ranks(values: np.ndarray) -> np.ndarray:
    """Non-domination rank of each row (0: on the front, 1: on the front without rank 0...)."""
    values = np.asarray(values, dtype=float)
    ranks = np.full(len(values), -1, dtype=int)
    remaining = np.arange(len(values))
    rank = 0
    while len(remaining):
        mask = pareto_mask(values[remaining])
        ranks[remaining[mask]] = rank
        remaining = remaining[~mask]
        rank += 1
    return ranks


def _hv_unit(points: np.ndarray) -> float:
    """Exact volume dominated by ``points`` (in [0, 1]^d, minimized) within the unit box."""
    if len(points) == 0:
        return 0.0
    d = points.shape[1]
    if d == 1:
        return float(1.0 - points[:, 0].min())
    points = points[pareto_mask(points)]
    if d == 2:
        pts = points[np.argsort(points[:, 0])]
        volume = 0.0
        best_y = 1.0
        for x, y in pts:
            if y < best_y:
                volume += (1.0 - x) * (best_y - y)
                best_y = y
        return float(volume)
    # Slice along the last objective: between consecutive levels the dominated set is the
    # (d-1)-dimensional hypervolume of the points at or below that level.
    pts = points[np.argsort(points[:, -1])]
    levels = [*pts[:, -1].tolist(), 1.0]
    volume = 0.0
    for k in range(len(pts)):
        height = levels[k + 1] - levels[k]
        if height > 0:
            volume += height * _hv_unit(pts[: k + 1, :-1])
    return float(volume)


@dataclass(frozen=True, slots=True)
class Frame:
    """Per objective (minimized): the ideal value (maps to 0) and the reference (maps to 1)."""

    ideal: tuple[float, ...]
    reference: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.ideal) != len(self.reference):
            raise ValueError(f"frame: {len(self.ideal)} ideal values but "
                             f"{len(self.reference)} reference values")
        for i, (lo, hi) in enumerate(zip(self.ideal, self.reference, strict=True)):
            if not hi > lo:
                raise ValueError(f"frame: objective {i} has reference {hi} <= ideal {lo}")

    def normalize(self, values: np.ndarray) -> np.ndarray:
        lo = np.asarray(self.ideal, dtype=float)
        hi = np.asarray(self.reference, dtype=float)
        return (np.asarray(values, dtype=float) - lo) / (hi - lo)

    def to_dict(self) -> dict[str, list[float]]:
        return {"ideal": list(self.ideal), "reference": list(self.reference)}


def hypervolume(values: np.ndarray, frame: Frame) -> float:
    """Normalized hypervolume (in [0, 1]) of the minimized ``values`` within ``frame``.

    Points worse than the reference in any objective contribute nothing; points better
    than the ideal are clipped to it.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return 0.0
    unit = frame.normalize(values.reshape(len(values), -1))
    inside = np.all(unit < 1.0, axis=1)
    return _hv_unit(np.clip(unit[inside], 0.0, 1.0))


def to_minimized(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """``values`` with maximized columns negated, so that every column is minimized."""
    sign = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    return np.asarray(values, dtype=float).reshape(-1, len(sign)) * sign


class FrontTracker:
    """The current front of a growing set of (minimized) points, and its hypervolume."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self._ids: list[int] = []
        self._values = np.empty((0, len(frame.ideal)))
        self._hypervolume: float | None = 0.0

    def add(self, ident: int, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=float).reshape(1, -1)
        front = self._values
        weakly = np.all(front <= values, axis=1)
        if np.any(weakly & (np.any(front < values, axis=1) | np.all(front == values, axis=1))):
            return  # dominated or already there: the front is unchanged
        beaten = np.all(values <= front, axis=1) & np.any(values < front, axis=1)
        self._values = np.vstack([front[~beaten], values])
        self._ids = [i for i, b in zip(self._ids, beaten, strict=True) if not b] + [ident]
        self._hypervolume = None

    @property
    def ids(self) -> list[int]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def hypervolume(self) -> float:
        if self._hypervolume is None:
            self._hypervolume = hypervolume(self._values, self.frame)
        return self._hypervolume
