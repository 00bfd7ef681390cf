"""Latency models: roofline, measured lookup table, fitted regressor; one interface.

A model predicts the latency (milliseconds) of fused kernels given as rows of
:mod:`archdesign.hardware.kernels` (vectorized over many kernels at once). A network's
latency is the sum over its fused kernels, optionally corrected by a network-level
calibration (``scale * sum + per_kernel_ms * kernels + constant_ms``) fitted on whole
networks. Per-block sums are memoized on the block's ``(fn, args)``, batch and dtype, and
:meth:`LatencyModel.predict_many` predicts every unseen block of many networks in one
vectorized call, so scoring a network is a few dictionary look-ups per run of identical
blocks.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
from scipy.spatial import cKDTree
from threadpoolctl import threadpool_limits

from archdesign.cost import dtype_bytes
from archdesign.hardware.kernels import (
    COL,
    OP_CLASSES,
    SHAPE_TERMS,
    kernels_many,
    network_kernels,
)
from archdesign.hardware.profile import HardwareProfile, ProfileError
from archdesign.hardware.table import KernelTable, load_table
from archdesign.layers import NumberedRuns, number_runs
from archdesign.spec import ArchSpec

logger = logging.getLogger(__name__)

_BlockKey = tuple[Any, ...]


class LatencyModel(ABC):
    """Predicts kernel and network latency (ms) on one hardware profile."""

    kind: str = ""

    def __init__(self, profile: HardwareProfile,
                 calibration: dict[str, float] | None = None) -> None:
        self.profile = profile
        self.calibration = dict(calibration or {})
        self._blocks: dict[tuple[int, str], dict[_BlockKey, tuple[float, int]]] = {}

    @abstractmethod
    def predict_kernels(self, rows: np.ndarray, batch: int | np.ndarray,
                        dtype: str | np.ndarray) -> np.ndarray:
        """Latency (ms) of each kernel row at ``batch`` and ``dtype`` (scalars or per row)."""

    # -- networks ----------------------------------------------------------------------

    def _dtype(self, dtype: str | None) -> str:
        dtype = dtype or self.profile.precision
        dtype_bytes(dtype)
        return dtype

    def predict_layers(self, spec: ArchSpec, batch: int = 1,
                       dtype: str | None = None) -> list[tuple[str, float]]:
        """Every fused kernel of ``spec`` (named by its layers) with its latency (ms).

        Uncalibrated: the network-level calibration applies to the total only.
        """
        dtype = self._dtype(dtype)
        names, rows = network_kernels(spec, self.profile.fusion)
        return list(zip(names, self.predict_kernels(rows, batch, dtype).tolist(), strict=True))

    def predict(self, spec: ArchSpec, batch: int = 1, dtype: str | None = None) -> float:
        """Network latency (ms): the sum over fused kernels, calibrated."""
        return float(self.predict_many([spec], batch, dtype)[0])

    def _block_figures(self, keys: Sequence[_BlockKey], batch: int,
                       dtype: str) -> list[tuple[float, int]]:
        """(Σ latency of its kernels in ms, number of kernels) of each block (keys of
        :func:`~archdesign.layers.block_key`), uncalibrated; memoized for this batch and
        dtype, and the blocks not seen yet predicted in one call."""
        memo = self._blocks.setdefault((batch, dtype), {})
        missing = [key for key in dict.fromkeys(keys) if key not in memo]
        if missing:
            rows, sizes = kernels_many(missing, self.profile.fusion)
            latency = self.predict_kernels(rows, batch, dtype)
            # each block's kernels summed as one segment (blocks without kernels: 0)
            ran = sizes > 0
            sums = np.zeros(len(sizes))
            if ran.any():
                sums[ran] = np.add.reduceat(latency, (np.cumsum(sizes) - sizes)[ran])
            for key, total, n in zip(missing, sums.tolist(), sizes.tolist(), strict=True):
                memo[key] = (total, n)
        return [memo[key] for key in keys]

    def block_latency(self, keys: Sequence[_BlockKey], batch: int = 1,
                      dtype: str | None = None) -> list[float]:
        """Each block's share (ms) of a network's latency, calibrated: a network's latency
        is the sum of its blocks' shares plus :meth:`network_constant`."""
        dtype = self._dtype(dtype)
        scale = self.calibration.get("scale", 1.0)
        per_kernel = self.calibration.get("per_kernel_ms", 0.0)
        return [scale * t + per_kernel * n for t, n in self._block_figures(keys, batch, dtype)]

    def network_constant(self) -> float:
        """The calibrated latency (ms) of a network beyond its blocks' shares."""
        return float(self.calibration.get("constant_ms", 0.0))

    def predict_many(self, specs: Sequence[ArchSpec], batch: int = 1,
                     dtype: str | None = None, runs: NumberedRuns | None = None,
                     ) -> np.ndarray:
        """Latency (ms) of many networks; unseen blocks are predicted in one call.

        ``runs``: ``number_runs(specs)`` when the caller has it already."""
        dtype = self._dtype(dtype)
        # the networks' runs of identical blocks, each distinct block once
        runs = number_runs(specs) if runs is None else runs
        figures = self._block_figures(runs.keys, batch, dtype)
        scale = self.calibration.get("scale", 1.0)
        per_kernel = self.calibration.get("per_kernel_ms", 0.0)
        constant = self.network_constant()
        out = np.empty(len(specs))
        first = 0
        for i, count in enumerate(runs.counts):
            total = 0.0
            kernels = 0
            for j in range(first, first + count):
                t, n = figures[runs.numbers[j]]
                repeat = runs.repeats[j]
                for _ in range(repeat):  # block by block: the rounding of the sum over the
                    total += t  # network's blocks in order, whatever the runs
                kernels += n * repeat
            first += count
            out[i] = scale * total + per_kernel * kernels + constant
        return out


# -- roofline ------------------------------------------------------------------------------


class _Quantity(Protocol):
    def __truediv__(self, other: Any) -> Any: ...
    def __rtruediv__(self, other: float) -> Any: ...


_Q = TypeVar("_Q", bound=_Quantity)


def shape_factors(c_in: _Q, c_out: _Q, groups: _Q, positions: _Q) -> tuple[_Q, _Q, _Q]:
    """The shape terms g_j of :data:`~archdesign.hardware.kernels.SHAPE_TERMS`, in order,
    from a kernel's input and output channels, groups and output positions times batch:
    1/c_out, groups/c_in, 1/positions. One definition for kernel rows
    (:func:`shape_terms`) and for the MP's monomials in log-sizes."""
    return 1.0 / c_out, groups / c_in, 1.0 / positions


def shape_terms(rows: np.ndarray, batch: int | np.ndarray) -> np.ndarray:
    """The monomials g_j of :data:`~archdesign.hardware.kernels.SHAPE_TERMS`, one row per
    kernel row."""
    spatial = rows[:, COL["h_out"]] * rows[:, COL["w_out"]] * np.asarray(batch,
                                                                          dtype=np.float64)
    return np.column_stack(shape_factors(rows[:, COL["c_in"]], rows[:, COL["c_out"]],
                                         rows[:, COL["groups"]], spatial))


def roofline_constants(profile: HardwareProfile, calibration: dict[str, float],
                       ) -> tuple[np.ndarray, float, np.ndarray, bool]:
    """Per op class kernel overhead (s), the overhead per group and sample (s), the shape
    coefficients a_j, and whether the overhead overlaps the kernel (a third term of its
    max) rather than adding to it.

    A calibration may give ``overhead_us.CLASS`` (else the profile's
    ``kernel_overhead_us``), ``per_group_us`` (a grouped kernel run as a loop over its
    groups; else 0), ``shape.TERM`` (else 0) and ``overlap`` (1: overlapping).
    """
    overhead = np.array([calibration.get(f"overhead_us.{c}", profile.kernel_overhead_us)
                         for c in OP_CLASSES]) * 1e-6
    shape = np.array([calibration.get(f"shape.{t}", 0.0) for t in SHAPE_TERMS])
    return (overhead, calibration.get("per_group_us", 0.0) * 1e-6, shape,
            calibration.get("overlap", 0.0) > 0)


class RooflineModel(LatencyModel):
    """max(compute time, memory time) per kernel, plus a per-kernel overhead.

    compute = 2·MACs·batch / (peak(class, dtype)·compute efficiency(class)), times the
    shape factor 1 + Σ_j a_j·g_j of a calibration (:data:`SHAPE_TERMS`; none by default);
    memory = bytes of activations read and written and weights / (bandwidth·memory
    efficiency(class)); the overhead is per op class plus one per group and sample (a
    grouped kernel run as a loop over its groups), and with ``overlap`` it is a third
    term of the max instead of an addend (launches that run ahead of an asynchronous
    device hide under the kernels they queue).
    """

    kind = "roofline"

    def __init__(self, profile: HardwareProfile,
                 calibration: dict[str, float] | None = None) -> None:
        super().__init__(profile, calibration)
        self._rates: dict[str, np.ndarray] = {}
        eff = [profile.efficiency_of(c) for c in OP_CLASSES]
        self._eff_memory = np.array([e.memory for e in eff])
        self._eff_compute = np.array([e.compute for e in eff])
        self._overhead, self._per_group, self._shape, self._overlap = roofline_constants(
            profile, self.calibration)

    def _compute_rate(self, dtype: str) -> np.ndarray:
        if dtype not in self._rates:
            peaks = np.array([self.profile.peak(c, dtype) for c in OP_CLASSES])
            self._rates[dtype] = peaks * self._eff_compute
        return self._rates[dtype]

    def rates(self, dtype: str) -> tuple[np.ndarray, np.ndarray]:
        """Per op class: effective compute rate (FLOP/s) and memory rate (bytes/s)."""
        return (self._compute_rate(dtype),
                self.profile.memory_bandwidth * self._eff_memory)

    def terms(self, rows: np.ndarray, batch: int | np.ndarray,
              dtype: str | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compute-bound and memory-bound time (seconds) of each kernel."""
        cls = rows[:, COL["op_class"]].astype(np.int64)
        batch_arr = np.asarray(batch, dtype=np.float64)
        if isinstance(dtype, str):
            rate = self._compute_rate(dtype)[cls]
            nbytes: float | np.ndarray = float(dtype_bytes(dtype))
        else:
            rate = np.empty(len(rows))
            nbytes = np.empty(len(rows))
            for d in np.unique(dtype):
                mask = dtype == d
                rate[mask] = self._compute_rate(str(d))[cls[mask]]
                nbytes[mask] = dtype_bytes(str(d))
        compute = 2.0 * rows[:, COL["flops"]] * batch_arr / rate
        if self._shape.any():
            compute = compute * (1.0 + shape_terms(rows, batch_arr) @ self._shape)
        moved = ((rows[:, COL["in_elements"]] + rows[:, COL["out_elements"]]) * batch_arr
                 + rows[:, COL["weights"]]) * nbytes
        memory = moved / (self.profile.memory_bandwidth * self._eff_memory[cls])
        return compute, memory

    def predict_kernels(self, rows: np.ndarray, batch: int | np.ndarray,
                        dtype: str | np.ndarray) -> np.ndarray:
        compute, memory = self.terms(rows, batch, dtype)
        overhead = self._overhead[rows[:, COL["op_class"]].astype(np.int64)]
        if self._per_group:
            overhead = overhead + self._per_group * rows[:, COL["groups"]] * np.asarray(
                batch, dtype=np.float64)
        if self._overlap:
            return np.maximum(np.maximum(compute, memory), overhead) * 1e3
        return (np.maximum(compute, memory) + overhead) * 1e3


# -- lookup table ----------------------------------------------------------------------------

# Exact-match key and the group within which unseen shapes are interpolated.
_KEY_COLUMNS = [COL[c] for c in ("op_class", "c_in", "h_in", "w_in", "c_out", "kernel",
                                 "stride", "groups", "fused_add")]
_GROUP_COLUMNS = [COL[c] for c in ("op_class", "kernel", "stride", "fused_add")]
_SPACE_COLUMNS = [COL[c] for c in ("c_in", "h_in", "c_out", "groups")]


class TableModel(LatencyModel):
    """Measured latencies looked up by exact kernel shape; unseen shapes interpolated.

    Interpolation: among measured kernels of the same class, kernel size, stride and
    fusion, the ``neighbors`` nearest in log-shape (channels, resolution, groups, batch)
    give the ratio measured / roofline; the query's roofline time is scaled by their
    inverse-distance-weighted geometric mean ratio. With no such kernel, the roofline.
    """

    kind = "table"

    def __init__(self, profile: HardwareProfile, table: KernelTable, neighbors: int = 4,
                 calibration: dict[str, float] | None = None) -> None:
        super().__init__(profile, calibration)
        if not len(table):
            raise ProfileError(f"{profile.name}: the lookup table has no measurements")
        self.roofline = RooflineModel(profile)
        self.neighbors = neighbors
        self._exact: dict[tuple[Any, ...], float] = {}
        keys = self._keys(table.rows, table.batch, table.dtype)
        grouped: dict[tuple[Any, ...], list[float]] = {}
        for key, ms in zip(keys, table.latency_ms.tolist(), strict=True):
            grouped.setdefault(key, []).append(ms)
        self._exact = {k: float(np.median(v)) for k, v in grouped.items()}
        log_ratio = np.log(table.latency_ms / self.roofline.predict_kernels(
            table.rows, table.batch, table.dtype))
        points = self._space(table.rows, table.batch)
        groups = self._groups(table.rows, table.dtype)
        self._trees: dict[tuple[Any, ...], tuple[cKDTree, np.ndarray]] = {}
        index: dict[tuple[Any, ...], list[int]] = {}
        for i, g in enumerate(groups):
            index.setdefault(g, []).append(i)
        for g, members in index.items():
            idx = np.array(members)
            self._trees[g] = (cKDTree(points[idx]), log_ratio[idx])

    @staticmethod
    def _keys(rows: np.ndarray, batch: Any, dtype: Any) -> list[tuple[Any, ...]]:
        n = len(rows)
        b = np.broadcast_to(np.asarray(batch), (n,))
        d = np.broadcast_to(np.asarray(dtype, dtype=object), (n,))
        key_rows = rows[:, _KEY_COLUMNS].astype(np.int64).tolist()
        return [(*k, int(bb), str(dd))
                for k, bb, dd in zip(key_rows, b.tolist(), d.tolist(), strict=True)]

    @staticmethod
    def _groups(rows: np.ndarray, dtype: Any) -> list[tuple[Any, ...]]:
        n = len(rows)
        d = np.broadcast_to(np.asarray(dtype, dtype=object), (n,))
        return [(*g, str(dd)) for g, dd in
                zip(rows[:, _GROUP_COLUMNS].astype(np.int64).tolist(), d.tolist(), strict=True)]

    @staticmethod
    def _space(rows: np.ndarray, batch: Any) -> np.ndarray:
        b = np.broadcast_to(np.asarray(batch, dtype=np.float64), (len(rows),))
        return np.log2(np.column_stack([rows[:, _SPACE_COLUMNS], b]))

    def predict_kernels(self, rows: np.ndarray, batch: int | np.ndarray,
                        dtype: str | np.ndarray) -> np.ndarray:
        out = np.full(len(rows), np.nan)
        for i, key in enumerate(self._keys(rows, batch, dtype)):
            hit = self._exact.get(key)
            if hit is not None:
                out[i] = hit
        todo = np.flatnonzero(np.isnan(out))
        if len(todo):
            sub_batch: int | np.ndarray = (int(batch) if np.ndim(batch) == 0
                                           else np.asarray(batch)[todo])
            base = self.roofline.predict_kernels(
                rows[todo], sub_batch,
                dtype if isinstance(dtype, str) else np.asarray(dtype)[todo])
            points = self._space(rows[todo], sub_batch)
            groups = self._groups(rows[todo], dtype if isinstance(dtype, str)
                                  else np.asarray(dtype)[todo])
            by_group: dict[tuple[Any, ...], list[int]] = {}
            for j, g in enumerate(groups):
                by_group.setdefault(g, []).append(j)
            factor = np.ones(len(todo))
            for g, members in by_group.items():
                found = self._trees.get(g)
                if found is None:
                    continue
                tree, log_ratio = found
                k = min(self.neighbors, tree.n)
                dist, idx = tree.query(points[members], k=k)
                dist = dist.reshape(len(members), k)
                idx = idx.reshape(len(members), k)
                weight = 1.0 / (dist + 1e-3) ** 2
                factor[members] = np.exp((weight * log_ratio[idx]).sum(1) / weight.sum(1))
            out[todo] = base * factor
        return out


# -- fitted regressor --------------------------------------------------------------------------

DEFAULT_FIT_PARAMS: dict[str, Any] = {
    "max_iter": 600, "learning_rate": 0.08, "max_leaf_nodes": 31, "min_samples_leaf": 4,
    "l2_regularization": 0.0, "random_state": 0,
}


def _log2(x: np.ndarray) -> np.ndarray:
    return np.log2(np.maximum(x, 1e-30))


class FittedModel(LatencyModel):
    """Gradient boosting on layer features plus roofline terms, predicting log latency.

    The target is log(measured / roofline): trees cannot extrapolate, so what they learn
    is the correction to a physically shaped baseline that scales with the kernel. Fit
    deterministically (fixed ``random_state``) from the stored measurements; the profile
    stores the data and hyperparameters, never a pickled estimator.
    """

    kind = "fitted"

    def __init__(self, profile: HardwareProfile, table: KernelTable,
                 params: dict[str, Any] | None = None,
                 calibration: dict[str, float] | None = None) -> None:
        super().__init__(profile, calibration)
        from sklearn.ensemble import HistGradientBoostingRegressor

        if len(table) < 8:
            raise ProfileError(f"{profile.name}: a fitted model needs at least 8 measured "
                               f"kernels, the table has {len(table)}")
        self.roofline = RooflineModel(profile)
        self.params = {**DEFAULT_FIT_PARAMS, **(params or {})}
        self.n_train = len(table)
        x = self.features(table.rows, table.batch, table.dtype)
        base = self.roofline.predict_kernels(table.rows, table.batch, table.dtype)
        y = np.log(table.latency_ms / base)
        self._regressor = HistGradientBoostingRegressor(
            categorical_features=[0], early_stopping=False, **self.params)
        # one OpenMP thread: on a shared machine more threads oversubscribe (30x slower)
        with threadpool_limits(1):
            self._regressor.fit(x, y)

    def features(self, rows: np.ndarray, batch: int | np.ndarray,
                 dtype: str | np.ndarray) -> np.ndarray:
        n = len(rows)
        b = np.broadcast_to(np.asarray(batch, dtype=np.float64), (n,))
        if isinstance(dtype, str):
            nbytes = np.full(n, float(dtype_bytes(dtype)))
        else:
            nbytes = np.array([dtype_bytes(str(d)) for d in dtype], dtype=np.float64)
        compute, memory = self.roofline.terms(rows, batch, dtype)
        c = COL
        return np.column_stack([
            rows[:, c["op_class"]], _log2(rows[:, c["c_in"]]), _log2(rows[:, c["h_in"]]),
            _log2(rows[:, c["c_out"]]), rows[:, c["kernel"]], rows[:, c["stride"]],
            _log2(rows[:, c["groups"]]), rows[:, c["fused_add"]], rows[:, c["fused_ops"]],
            _log2(b), nbytes, _log2(rows[:, c["flops"]] * b + 1),
            _log2(rows[:, c["in_elements"]] * b), _log2(rows[:, c["out_elements"]] * b),
            _log2(rows[:, c["weights"]] + 1), _log2(compute + 1e-12), _log2(memory + 1e-12),
            _log2(rows[:, c["c_in"]] / rows[:, c["groups"]]),
            # tile quantization of GPU kernels and SIMD-width alignment of CPU ones
            rows[:, c["c_in"]] % 8 == 0, rows[:, c["c_out"]] % 8 == 0,
            _log2(np.ceil(rows[:, c["c_out"]] / 64)),
            _log2(np.ceil(rows[:, c["h_out"]] * rows[:, c["w_out"]] / 64)),
        ])

    def predict_kernels(self, rows: np.ndarray, batch: int | np.ndarray,
                        dtype: str | np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        base = self.roofline.predict_kernels(rows, batch, dtype)
        with threadpool_limits(1):
            correction = self._regressor.predict(self.features(rows, batch, dtype))
        return base * np.exp(correction)


# -- factory -----------------------------------------------------------------------------------

MODEL_KINDS = ("roofline", "table", "fitted")


def load_measurements(profile: HardwareProfile) -> KernelTable:
    if profile.model is None or not profile.model.measurements:
        raise ProfileError(f"{profile.path or profile.name}: model.measurements: this profile "
                           f"has no measured data (a datasheet profile supports the roofline "
                           f"model only)")
    return load_table(profile.resolve(profile.model.measurements))


def model_for(profile: HardwareProfile, kind: str | None = None) -> LatencyModel:
    """The profile's latency model: ``kind`` or the profile's own (roofline by default).

    Measured models train on the ``train`` split of the stored measurements only.
    """
    if kind is None:
        kind = profile.model.kind if profile.model is not None else "roofline"
    if kind not in MODEL_KINDS:
        raise ProfileError(f"model: {kind!r} is not one of {list(MODEL_KINDS)}")
    calibration = (profile.model.calibration
                   if profile.model is not None and profile.model.kind == kind else None)
    if kind == "roofline":
        return RooflineModel(profile, calibration)
    table = load_measurements(profile).train
    if kind == "table":
        return TableModel(profile, table, calibration=calibration)
    params = profile.model.params if profile.model is not None else {}
    return FittedModel(profile, table, params, calibration)

