"""Calibrate a device from whole-network timings: a roofline whose constants are fitted.

The model stays the roofline of :class:`~archdesign.hardware.models.RooflineModel`, a sum
over fused kernels of a max of two posynomial terms plus overheads (so the MP can bound it):

    latency = Σ_k max(compute_k / eff_c[class_k], memory_k / eff_m[class_k])
              + n_kernels · overhead + constant

with ``compute_k`` and ``memory_k`` the kernel's time at the datasheet's peak throughput
and bandwidth (batch and dtype are inputs of both). What is fitted, per op class, is the
fraction of peak compute and of bandwidth reached, plus the per-kernel overhead and a
per-network constant; the fusion rules are chosen among the four combinations by
cross-validated error. The fit minimizes a robust (soft-L1) loss of log(predicted /
measured) with scipy's trust-region least squares on a smooth max (a p-norm, p raised
4 -> 16 -> 64), deterministically, plus a weak Gaussian prior pulling each log-efficiency
towards the datasheet's (so 5 networks cannot push an unidentified class anywhere).
Predictions use the exact max: the result is an ordinary profile for ``model_for``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archdesign.errors import InputError
from archdesign.hardware.kernels import COL, OP_CLASSES, FusionRules, block_kernels
from archdesign.hardware.profile import DEFAULT_CLASS, Efficiency, HardwareProfile, ModelConfig
from archdesign.layers import blocks
from archdesign.spec import ArchSpec

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

    from archdesign.measurements import MeasurementFile

logger = logging.getLogger(__name__)

#: Fusion rules the data chooses among (a residual add fuses only into a fused conv, so
#: without conv+norm+act fusion the residual rule changes nothing).
FUSION_CHOICES = (FusionRules(True, True), FusionRules(True, False), FusionRules(False, False))
MIN_NETWORKS = 3
#: Prior standard deviations (natural log) of the fitted constants around the datasheet:
#: efficiencies within a factor ~3, the overhead within a factor ~20.
PRIOR_SIGMA_EFFICIENCY = 1.0
PRIOR_SIGMA_OVERHEAD = 3.0
#: Typical log-error of a whole-network timing: the scale of the robust loss, and what
#: turns the priors into residuals comparable with the data's.
NOISE_SIGMA = 0.05
SMOOTH_MAX_POWERS = (4.0, 16.0, 64.0)
MIN_EFFICIENCY = 1e-4
MIN_MS = 1e-6


@dataclass(frozen=True)
class Features:
    """Networks as sums over their distinct fused kernels (at their batch)."""

    rules: FusionRules
    counts: csr_matrix  # networks x distinct kernels: how often each network runs each
    op_class: np.ndarray  # per distinct kernel
    compute_ms: np.ndarray  # time at peak throughput (efficiency 1)
    memory_ms: np.ndarray  # time at full bandwidth
    n_kernels: np.ndarray  # per network

    def subset(self, index: np.ndarray) -> Features:
        counts = self.counts[index]
        used = np.flatnonzero(np.asarray(counts.sum(axis=0)).ravel() > 0)
        return Features(self.rules, counts[:, used], self.op_class[used],
                        self.compute_ms[used], self.memory_ms[used], self.n_kernels[index])


@dataclass(frozen=True)
class KernelCounts:
    """Which distinct kernels (rows + batch) each network runs, independent of a device."""

    rules: FusionRules
    counts: csr_matrix  # networks x distinct kernels
    kernels: np.ndarray  # distinct kernel rows, the batch as a last column

    def features(self, profile: HardwareProfile, dtype: str | None = None) -> Features:
        """The kernels' times at ``profile``'s peaks (the roofline's own formula)."""
        from archdesign.hardware.models import RooflineModel

        unit = replace(profile, efficiency={DEFAULT_CLASS: Efficiency(1.0, 1.0)},
                       kernel_overhead_us=0.0)
        compute, memory = RooflineModel(unit).terms(self.kernels[:, :-1], self.kernels[:, -1],
                                                    dtype or profile.precision)
        return Features(self.rules, self.counts,
                        self.kernels[:, COL["op_class"]].astype(np.int64),
                        compute * 1e3, memory * 1e3,
                        np.asarray(self.counts.sum(axis=1)).ravel())


def kernel_counts(specs: Sequence[ArchSpec], batches: Sequence[int] | np.ndarray,
                  rules: FusionRules) -> KernelCounts:
    """The distinct kernels of ``specs`` (each at its batch) and how often each runs.

    Blocks are shared between networks of a space, so this costs one expansion per
    distinct block and a sparse matrix.
    """
    from scipy.sparse import csr_matrix

    batches = np.asarray(batches, dtype=np.int64)
    block_index: dict[tuple[Any, ...], int] = {}
    block_rows: list[np.ndarray] = []
    block_batch: list[int] = []
    net_blocks: list[list[int]] = []
    for spec, batch in zip(specs, batches.tolist(), strict=True):
        ids = []
        for b in blocks(spec):
            key = (b.fn, b.args, batch)
            if key not in block_index:
                block_index[key] = len(block_rows)
                block_rows.append(block_kernels(b.fn, b.args, rules).rows)
                block_batch.append(batch)
            ids.append(block_index[key])
        net_blocks.append(ids)
    sizes = np.array([len(r) for r in block_rows])
    rows = np.concatenate(block_rows)
    row_batch = np.repeat(np.array(block_batch, dtype=np.float64), sizes)
    # one column per distinct (kernel, batch): many blocks share kernels (stems, heads)
    distinct, kernel_of_row = np.unique(np.column_stack([rows, row_batch]), axis=0,
                                        return_inverse=True)
    kernel_of_row = kernel_of_row.ravel()
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rows_of_block = [kernel_of_row[starts[i]:starts[i + 1]] for i in range(len(sizes))]
    columns = [np.concatenate([rows_of_block[j] for j in ids]) for ids in net_blocks]
    network = np.repeat(np.arange(len(columns)), [len(c) for c in columns])
    counts = csr_matrix((np.ones(len(network)), (network, np.concatenate(columns))),
                        shape=(len(specs), len(distinct)))
    counts.sum_duplicates()
    return KernelCounts(rules, counts, distinct)


def featurize(specs: Sequence[ArchSpec], batches: Sequence[int] | np.ndarray,
              profile: HardwareProfile, rules: FusionRules,
              dtype: str | None = None) -> Features:
    """:func:`kernel_counts` of ``specs`` timed at ``profile``'s peaks."""
    return kernel_counts(specs, batches, rules).features(profile, dtype)


# -- the fit -----------------------------------------------------------------------------

_N_CLASSES = len(OP_CLASSES)
# parameter vector: log eff_c per class, log eff_m per class, log overhead (ms), log constant
_OVERHEAD = 2 * _N_CLASSES
_CONSTANT = _OVERHEAD + 1


@dataclass(frozen=True)
class Fit:
    """Fitted constants: per op class efficiencies, per-kernel overhead, constant (ms)."""

    rules: FusionRules
    compute: np.ndarray  # efficiency per op class (OP_CLASSES order)
    memory: np.ndarray
    overhead_ms: float
    constant_ms: float

    @classmethod
    def of_profile(cls, profile: HardwareProfile) -> Fit:
        """A profile's own constants (its datasheet roofline, uncalibrated)."""
        eff = [profile.efficiency_of(c) for c in OP_CLASSES]
        constant = (profile.model.calibration.get("constant_ms", 0.0)
                    if profile.model is not None else 0.0)
        return cls(profile.fusion, np.array([e.compute for e in eff]),
                   np.array([e.memory for e in eff]),
                   max(profile.kernel_overhead_us * 1e-3, MIN_MS), max(constant, MIN_MS))

    @property
    def theta(self) -> np.ndarray:
        return np.concatenate([np.log(self.compute), np.log(self.memory),
                               [math.log(self.overhead_ms), math.log(self.constant_ms)]])

    def predict(self, features: Features) -> np.ndarray:
        """Exact-max prediction (ms) of the networks of ``features``."""
        return _predict(self.theta, features, math.inf)[0]

    def apply(self, base: HardwareProfile) -> HardwareProfile:
        """``base`` with the fitted efficiencies, overhead, fusion and constant."""
        efficiency = {DEFAULT_CLASS: base.efficiency_of(DEFAULT_CLASS)}
        efficiency.update({cls: Efficiency(float(c), float(m)) for cls, c, m
                           in zip(OP_CLASSES, self.compute, self.memory, strict=True)})
        return replace(base, efficiency=efficiency, kernel_overhead_us=self.overhead_ms * 1e3,
                       fusion=self.rules,
                       model=ModelConfig("roofline", calibration={
                           "constant_ms": self.constant_ms}))


def _prior(base: HardwareProfile) -> np.ndarray:
    eff = [base.efficiency_of(c) for c in OP_CLASSES]
    return np.concatenate([np.log([e.compute for e in eff]), np.log([e.memory for e in eff]),
                           [math.log(max(base.kernel_overhead_us * 1e-3, MIN_MS)),
                            math.log(MIN_MS)]])


def _predict(theta: np.ndarray, f: Features, power: float,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network times, per-kernel times and the compute term's share of each kernel's max."""
    # a kernel without FLOPs (an add, a pool) has log compute time -inf: memory wins
    with np.errstate(divide="ignore"):
        log_c = np.log(f.compute_ms) - theta[:_N_CLASSES][f.op_class]
        log_m = np.log(f.memory_ms) - theta[_N_CLASSES:_OVERHEAD][f.op_class]
    top = np.maximum(log_c, log_m)
    if math.isinf(power):
        log_t = top
        share = (log_c >= log_m).astype(np.float64)
    else:  # p-norm smooth max, computed in logs
        a = np.exp(power * (log_c - top))
        b = np.exp(power * (log_m - top))
        log_t = top + np.log(a + b) / power
        share = a / (a + b)
    kernel_ms = np.exp(log_t)
    total = (f.counts @ kernel_ms + f.n_kernels * math.exp(theta[_OVERHEAD])
             + math.exp(theta[_CONSTANT]))
    return total, kernel_ms, share


def _solve(f: Features, measured: np.ndarray, prior: np.ndarray, start: np.ndarray,
           ) -> np.ndarray:
    from scipy.optimize import least_squares

    log_measured = np.log(measured)
    onehot = np.eye(_N_CLASSES)[f.op_class]
    weight = np.full(len(prior), NOISE_SIGMA / PRIOR_SIGMA_EFFICIENCY)
    weight[_OVERHEAD] = NOISE_SIGMA / PRIOR_SIGMA_OVERHEAD
    weight[_CONSTANT] = 0.0  # the constant is free (bounded below)
    lower = np.full(len(prior), math.log(MIN_EFFICIENCY))
    lower[_OVERHEAD:] = math.log(MIN_MS)
    upper = np.zeros(len(prior))
    upper[_OVERHEAD:] = math.log(1e6)
    theta = np.clip(start, lower + 1e-9, upper - 1e-9)
    for power in SMOOTH_MAX_POWERS:
        def residuals(t: np.ndarray, power: float = power) -> np.ndarray:
            total = _predict(t, f, power)[0]
            return np.concatenate([np.log(total) - log_measured, weight * (t - prior)])

        def jacobian(t: np.ndarray, power: float = power) -> np.ndarray:
            total, kernel_ms, share = _predict(t, f, power)
            d_c = -(f.counts @ (onehot * (kernel_ms * share)[:, None]))
            d_m = -(f.counts @ (onehot * (kernel_ms * (1 - share))[:, None]))
            d_o = (f.n_kernels * math.exp(t[_OVERHEAD]))[:, None]
            d_k = np.full((len(total), 1), math.exp(t[_CONSTANT]))
            data = np.hstack([d_c, d_m, d_o, d_k]) / total[:, None]
            return np.vstack([data, np.diag(weight)])

        theta = least_squares(residuals, theta, jac=jacobian, bounds=(lower, upper),
                              loss="soft_l1", f_scale=NOISE_SIGMA, x_scale=1.0,
                              max_nfev=200, method="trf").x
    return np.asarray(theta)


def fit(features: Features, measured: np.ndarray, base: HardwareProfile) -> Fit:
    """Fit the constants of ``base``'s roofline to measured network times (ms)."""
    measured = np.asarray(measured, dtype=np.float64)
    prior = _prior(base)
    start = prior.copy()
    # start the constant at a small share of the fastest network (the data decide)
    start[_CONSTANT] = math.log(max(0.01 * float(measured.min()), 2 * MIN_MS))
    theta = _solve(features, measured, prior, start)
    return Fit(features.rules, np.exp(theta[:_N_CLASSES]),
               np.exp(theta[_N_CLASSES:_OVERHEAD]), float(math.exp(theta[_OVERHEAD])),
               float(math.exp(theta[_CONSTANT])))


def folds(n: int, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Indices of ``min(k, n)`` seeded, near-equal folds of ``n`` items."""
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[i::min(k, n)]) for i in range(min(k, n))]


def cross_validate(features: Features, measured: np.ndarray, base: HardwareProfile,
                   k: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions (ms): each network predicted by a fit that never saw it."""
    out = np.empty(len(measured))
    everyone = np.arange(len(measured))
    for held in folds(len(measured), k, seed):
        train = np.setdiff1d(everyone, held)
        out[held] = fit(features.subset(train), measured[train], base).predict(
            features.subset(held))
    return out


@dataclass(frozen=True)
class Calibration:
    """The chosen fit, its cross-validated predictions, and what each fusion scored."""

    fit: Fit
    cross_validated: dict[str, float | int]
    fusion_scores: dict[str, float]  # fusion label -> cross-validated mean |log error|
    oof_ms: np.ndarray


def fusion_label(rules: FusionRules) -> str:
    return (f"conv_norm_act={str(rules.conv_norm_act).lower()},"
            f"residual_add={str(rules.residual_add).lower()}")


def calibrate(specs: Sequence[ArchSpec], batches: Sequence[int] | np.ndarray,
              measured: Sequence[float] | np.ndarray, base: HardwareProfile,
              fusion: Sequence[FusionRules] = FUSION_CHOICES, k: int = 5,
              seed: int = 0) -> Calibration:
    """Fit ``base`` to measured networks; the fusion rules with least CV error win."""
    return calibrate_features({rules: featurize(specs, batches, base, rules)
                               for rules in fusion}, measured, base, k, seed)


def calibrate_features(candidates: dict[FusionRules, Features],
                       measured: Sequence[float] | np.ndarray, base: HardwareProfile,
                       k: int = 5, seed: int = 0) -> Calibration:
    """:func:`calibrate` on networks already featurized under each candidate fusion."""
    from archdesign.hardware.validate import metrics

    measured = np.asarray(measured, dtype=np.float64)
    if len(measured) < MIN_NETWORKS:
        raise InputError(f"calibration needs at least {MIN_NETWORKS} measured networks, "
                         f"got {len(measured)}")
    best: tuple[float, Features, np.ndarray] | None = None
    scores: dict[str, float] = {}
    for rules, features in candidates.items():
        oof = cross_validate(features, measured, base, k, seed)
        score = float(np.mean(np.abs(np.log(oof / measured))))
        scores[fusion_label(rules)] = score
        if best is None or score < best[0] - 1e-12:
            best = (score, features, oof)
    if best is None:
        raise ValueError("calibrate_features: no fusion candidates")
    _, features, oof = best
    return Calibration(fit(features, measured, base), metrics(oof, measured), scores, oof)


def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def measurement_record(data: MeasurementFile, lines: Sequence[int] | None = None,
                       ) -> dict[str, Any]:
    """Where the calibration data came from (path, hash, column) and the rows used."""
    rows = [m for m in data.rows if lines is None or m.line in set(lines)]
    return {"path": str(data.path), "sha256": file_digest(data.path), "column": data.column,
            "rows": [[m.line, m.batch, m.value] for m in rows]}


def calibrated_profile(base: HardwareProfile, result: Calibration, name: str,
                       records: list[dict[str, Any]], held_out: dict[str, Any] | None = None,
                       runtime: str = "", source: str = "") -> HardwareProfile:
    """The profile a calibration gives: the fit applied to ``base``, with its evidence."""
    profile = result.fit.apply(base)
    validation: dict[str, Any] = {
        "level": "networks",
        "source": source or ", ".join(f"{r['path']} column {r['column']}" for r in records),
        "cross_validated": {**result.cross_validated, "folds": min(5, result.oof_ms.size)},
        "calibration": {
            "base": base.name,
            "fusion_scores": result.fusion_scores,
            "loss": f"soft-L1 on log(predicted/measured), scale {NOISE_SIGMA}",
            "prior_sigma": {"efficiency": PRIOR_SIGMA_EFFICIENCY,
                            "overhead": PRIOR_SIGMA_OVERHEAD},
            "measurements": records,
        },
    }
    if runtime:
        validation["runtime"] = runtime
    if held_out:
        validation["held_out"] = held_out
    derived = {k: v for k, v in base.derived.items()
               if not k.startswith(("efficiency", "kernel_overhead_us", "fusion"))}
    derived["efficiency"] = (f"fitted: profile calibrate on {result.oof_ms.size} measured "
                             f"networks (datasheet peaks of {base.name})")
    derived["kernel_overhead_us"] = "fitted: profile calibrate"
    derived["fusion"] = "fitted: the rules with least cross-validated error"
    return replace(profile, name=name, derived=derived, validation=validation,
                   source=f"{base.source}; calibrated on measured networks".lstrip("; "))


def calibrate_measurements(base: HardwareProfile, data: MeasurementFile, out: str | Path,
                           runtime: str = "") -> tuple[HardwareProfile, Calibration]:
    """``profile calibrate``: fit ``base`` to a measurement file and write ``out``."""
    out = Path(out)
    result = calibrate(data.specs, [m.batch for m in data.rows], data.values, base)
    profile = calibrated_profile(base, result, out.name.removesuffix(".yaml"),
                                 [measurement_record(data)], runtime=runtime)
    profile = replace(profile, path=out.resolve())
    profile.save(out)
    logger.info("wrote %s (calibrated on %d networks)", out, len(data.rows))
    return profile, result
