"""Calibrate a device from whole-network timings: a roofline whose constants are fitted.

The model stays the roofline of :class:`~archdesign.hardware.models.RooflineModel`, a sum
over fused kernels of a max of posynomial terms plus overheads (so the MP can bound it):

    latency = Σ_k T_k + constant,
    T_k = max(compute_k · (1 + Σ_j a_j g_jk) / eff_c[class_k], memory_k / eff_m[class_k])
          + o_k                       (overhead added: a synchronous runtime, a CPU), or
    T_k = max(compute_k · (1 + Σ_j a_j g_jk) / eff_c[class_k], memory_k / eff_m[class_k],
              o_k)                    (``overlap``: launches queued ahead of a GPU hide
                                       under the kernels that run longer than a launch)
    o_k = overhead[class_k] + per_group · groups_k · batch

with ``compute_k`` and ``memory_k`` the kernel's time at the datasheet's peak throughput
and bandwidth (batch and dtype are inputs of both) and g_jk the monomials of
:data:`~archdesign.hardware.kernels.SHAPE_TERMS` (1/c_out, groups/c_in,
1/(h_out·w_out·batch): a posynomial stand-in for vector-lane and tile rounding). What is
fitted: per op class the fraction of peak compute and of bandwidth reached; the overhead
(one, or one per op class shrunk towards a shared one); the per-group overhead and the
shape coefficients; a per-network constant. Which of the optional terms are free
(:class:`Structure`) and which fusion rules apply are chosen by cross-validated error. The
fit minimizes a robust (soft-L1) loss of log(predicted / measured) with scipy's
trust-region least squares on a smooth max (a p-norm, p raised 4 -> 16 -> 64) from
several starts, deterministically, plus weak Gaussian priors pulling each constant
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
from archdesign.hardware.kernels import COL, OP_CLASSES, SHAPE_TERMS, FusionRules, block_kernels
from archdesign.hardware.models import roofline_constants
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
PRIOR_SIGMA_EFFICIENCY = 3.0
PRIOR_SIGMA_OVERHEAD = 3.0
#: Per-class overheads are shrunk towards the shared one (a factor ~2.7 apart a priori,
#: at most e^3), the shape coefficients and the per-group overhead towards
#: ``SHAPE_PRIOR`` and ``PER_GROUP_PRIOR_MS`` (a factor ~20).
PRIOR_SIGMA_CLASS_OVERHEAD = 1.0
MAX_CLASS_OFFSET = 3.0
PRIOR_SIGMA_SHAPE = 3.0
SHAPE_PRIOR = 1.0
PER_GROUP_PRIOR_MS = 1e-4
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
    shape: np.ndarray  # per distinct kernel, the shape terms g_j (SHAPE_TERMS order)
    groups: np.ndarray  # per distinct kernel, groups x batch (the per-group overhead's)

    def subset(self, index: np.ndarray) -> Features:
        counts = self.counts[index]
        used = np.flatnonzero(np.asarray(counts.sum(axis=0)).ravel() > 0)
        return Features(self.rules, counts[:, used], self.op_class[used],
                        self.compute_ms[used], self.memory_ms[used], self.shape[used],
                        self.groups[used])


@dataclass(frozen=True)
class KernelCounts:
    """Which distinct kernels (rows + batch) each network runs, independent of a device."""

    rules: FusionRules
    counts: csr_matrix  # networks x distinct kernels
    kernels: np.ndarray  # distinct kernel rows, the batch as a last column

    def features(self, profile: HardwareProfile, dtype: str | None = None) -> Features:
        """The kernels' times at ``profile``'s peaks (the roofline's own formula)."""
        from archdesign.hardware.models import RooflineModel, shape_terms

        unit = replace(profile, efficiency={DEFAULT_CLASS: Efficiency(1.0, 1.0)},
                       kernel_overhead_us=0.0)
        compute, memory = RooflineModel(unit).terms(self.kernels[:, :-1], self.kernels[:, -1],
                                                    dtype or profile.precision)
        return Features(self.rules, self.counts,
                        self.kernels[:, COL["op_class"]].astype(np.int64),
                        compute * 1e3, memory * 1e3,
                        shape_terms(self.kernels[:, :-1], self.kernels[:, -1]),
                        self.kernels[:, COL["groups"]] * self.kernels[:, -1])


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
_N_SHAPE = len(SHAPE_TERMS)
# parameter vector: log eff_c and log eff_m per class, log overhead (ms), per-class log
# overhead offsets, log constant (ms), log overhead per group (ms), log shape coefficients
_EFF_M = _N_CLASSES
_OVERHEAD = 2 * _N_CLASSES
_OFFSET = _OVERHEAD + 1
_CONSTANT = _OFFSET + _N_CLASSES
_PER_GROUP = _CONSTANT + 1
_SHAPE = _PER_GROUP + 1
_N_THETA = _SHAPE + _N_SHAPE


@dataclass(frozen=True)
class Structure:
    """Which optional terms a fit frees (the others stay at their neutral values)."""

    class_overheads: bool = False  # one kernel overhead per op class, not one for all
    #: the compute term's channel / spatial inefficiency and the per-group overhead
    shape_terms: bool = False
    #: the overhead is a third term of each kernel's max instead of an addend: a launch
    #: that runs ahead of the device (asynchronous GPU queues) hides under the kernel
    overlap: bool = False

    @property
    def label(self) -> str:
        return (f"class_overheads={str(self.class_overheads).lower()},"
                f"shape_terms={str(self.shape_terms).lower()},"
                f"overlap={str(self.overlap).lower()}")

    def free(self) -> np.ndarray:
        mask = np.ones(_N_THETA, dtype=bool)
        mask[_OFFSET:_CONSTANT] = self.class_overheads
        mask[_PER_GROUP:] = self.shape_terms
        return mask


#: The candidates (class overheads, shape terms, overlap) cross-validation chooses among:
#: the plain roofline, with the shape terms (synchronous CPUs), with overlapping launches
#: (asynchronous GPUs), and the latter with a launch overhead per op class.
STRUCTURES = (Structure(False, False, False), Structure(False, True, False),
              Structure(False, False, True), Structure(True, False, True))


@dataclass(frozen=True)
class Fit:
    """Fitted constants: per op class efficiencies and kernel overheads, a constant (ms),
    the shape coefficients; ``theta`` is the fit's parameter vector (logs)."""

    rules: FusionRules
    structure: Structure
    theta: np.ndarray

    @classmethod
    def of_profile(cls, profile: HardwareProfile) -> Fit:
        """A profile's own constants (a datasheet's, or those a calibration wrote)."""
        theta = _prior(profile)
        calibration = profile.model.calibration if profile.model is not None else {}
        overhead, per_group, shape, overlap = roofline_constants(profile, calibration)
        theta[_OFFSET:_CONSTANT] = np.log(np.maximum(overhead * 1e3, MIN_MS)) - theta[_OVERHEAD]
        theta[_PER_GROUP] = math.log(max(per_group * 1e3, 1e-300))
        theta[_SHAPE:] = np.log(np.maximum(shape, 1e-300))
        structure = Structure(any(f"overhead_us.{c}" in calibration for c in OP_CLASSES),
                              any(f"shape.{t}" in calibration for t in SHAPE_TERMS), overlap)
        return cls(profile.fusion, structure, theta)

    @property
    def compute(self) -> np.ndarray:
        """Fraction of peak compute per op class (OP_CLASSES order)."""
        return np.exp(self.theta[:_EFF_M])

    @property
    def memory(self) -> np.ndarray:
        return np.exp(self.theta[_EFF_M:_OVERHEAD])

    @property
    def overhead_ms(self) -> np.ndarray:
        """Per-kernel overhead per op class (ms)."""
        return np.exp(self.theta[_OVERHEAD] + self.theta[_OFFSET:_CONSTANT])

    @property
    def constant_ms(self) -> float:
        return float(math.exp(self.theta[_CONSTANT]))

    @property
    def per_group_ms(self) -> float:
        """Overhead per group and sample (ms; 0 where the structure leaves it out)."""
        return float(math.exp(self.theta[_PER_GROUP])) * self.structure.shape_terms

    @property
    def shape(self) -> np.ndarray:
        """The shape coefficients a_j (0 where the structure leaves them out)."""
        return np.exp(self.theta[_SHAPE:]) * self.structure.free()[_SHAPE:]

    def predict(self, features: Features) -> np.ndarray:
        """Exact-max prediction (ms) of the networks of ``features``."""
        return _predict(self.theta, features, math.inf, self.structure)[0]

    def apply(self, base: HardwareProfile) -> HardwareProfile:
        """``base`` with the fitted efficiencies, overheads, fusion, shape terms, constant."""
        efficiency = {DEFAULT_CLASS: base.efficiency_of(DEFAULT_CLASS)}
        efficiency.update({cls: Efficiency(float(c), float(m)) for cls, c, m
                           in zip(OP_CLASSES, self.compute, self.memory, strict=True)})
        calibration = {"constant_ms": self.constant_ms}
        if self.structure.class_overheads:
            calibration.update({f"overhead_us.{c}": float(o) * 1e3
                                for c, o in zip(OP_CLASSES, self.overhead_ms, strict=True)})
        if self.structure.shape_terms:
            calibration["per_group_us"] = self.per_group_ms * 1e3
            calibration.update({f"shape.{t}": float(a)
                                for t, a in zip(SHAPE_TERMS, self.shape, strict=True)})
        if self.structure.overlap:
            calibration["overlap"] = 1.0
        return replace(base, efficiency=efficiency,
                       kernel_overhead_us=math.exp(self.theta[_OVERHEAD]) * 1e3,
                       fusion=self.rules, model=ModelConfig("roofline", calibration=calibration))


def _prior(base: HardwareProfile) -> np.ndarray:
    """The datasheet's constants as a parameter vector: the prior's centre."""
    eff = [base.efficiency_of(c) for c in OP_CLASSES]
    theta = np.zeros(_N_THETA)
    theta[:_EFF_M] = np.log([e.compute for e in eff])
    theta[_EFF_M:_OVERHEAD] = np.log([e.memory for e in eff])
    theta[_OVERHEAD] = math.log(max(base.kernel_overhead_us * 1e-3, MIN_MS))
    constant = (base.model.calibration.get("constant_ms", 0.0)
                if base.model is not None else 0.0)
    theta[_CONSTANT] = math.log(max(constant, MIN_MS))
    theta[_PER_GROUP] = math.log(PER_GROUP_PRIOR_MS)
    theta[_SHAPE:] = math.log(SHAPE_PRIOR)
    return theta


def _predict(theta: np.ndarray, f: Features, power: float, structure: Structure,
             ) -> tuple[np.ndarray, ...]:
    """Network times and, per kernel, the derivatives of its time by the log of its
    compute term, memory term, class overhead and per-group overhead, and the shape
    factor's log-derivatives (kernels x shape terms)."""
    shape = np.exp(theta[_SHAPE:]) * structure.free()[_SHAPE:]
    weighted = f.shape * shape  # kernels x shape terms
    factor = 1.0 + weighted.sum(axis=1)
    # a kernel without FLOPs (an add, a pool) has log compute time -inf: memory wins
    with np.errstate(divide="ignore"):
        log_c = np.log(f.compute_ms) - theta[:_EFF_M][f.op_class] + np.log(factor)
        log_m = np.log(f.memory_ms) - theta[_EFF_M:_OVERHEAD][f.op_class]
    class_overhead = np.exp(theta[_OVERHEAD] + theta[_OFFSET:_CONSTANT][f.op_class])
    group_overhead = (math.exp(theta[_PER_GROUP]) * f.groups if structure.shape_terms
                      else np.zeros(len(f.groups)))
    overhead = class_overhead + group_overhead
    log_o = np.log(overhead)
    overlap = structure.overlap
    top = np.maximum(np.maximum(log_c, log_m), log_o) if overlap else np.maximum(log_c, log_m)
    if math.isinf(power):
        log_t = top
        share_c = (log_c >= top).astype(np.float64)
        share_o = ((log_o >= top) & ~(share_c > 0)).astype(np.float64) if overlap else None
    else:  # p-norm smooth max, computed in logs
        a = np.exp(power * (log_c - top))
        b = np.exp(power * (log_m - top))
        o = np.exp(power * (log_o - top)) if overlap else 0.0
        log_t = top + np.log(a + b + o) / power
        share_c = a / (a + b + o)
        share_o = o / (a + b + o) if overlap else None
    kernel_ms = np.exp(log_t)
    if overlap:
        d_overhead = kernel_ms * share_o
        total = f.counts @ kernel_ms
        share_m = 1.0 - share_c - share_o
    else:
        d_overhead = overhead
        total = f.counts @ (kernel_ms + overhead)
        share_m = 1.0 - share_c
    total = total + math.exp(theta[_CONSTANT])
    return (total, kernel_ms * share_c, kernel_ms * share_m,
            d_overhead * class_overhead / overhead, d_overhead * group_overhead / overhead,
            weighted / factor[:, None])


def _solve(f: Features, measured: np.ndarray, prior: np.ndarray,
           starts: Sequence[np.ndarray], structure: Structure) -> np.ndarray:
    """The least-cost fit from several starts: the first, smoothest stage runs from each,
    the sharper stages continue from the best (a max has flat regions in which a term
    that does not win gets no gradient, so one start can stall where another does not)."""
    from scipy.optimize import least_squares

    log_measured = np.log(measured)
    onehot = np.eye(_N_CLASSES)[f.op_class]
    weight = np.full(_N_THETA, NOISE_SIGMA / PRIOR_SIGMA_EFFICIENCY)
    weight[_OVERHEAD] = NOISE_SIGMA / PRIOR_SIGMA_OVERHEAD
    weight[_OFFSET:_CONSTANT] = NOISE_SIGMA / PRIOR_SIGMA_CLASS_OVERHEAD
    weight[_CONSTANT] = 0.0  # the constant is free (bounded below)
    weight[_PER_GROUP:] = NOISE_SIGMA / PRIOR_SIGMA_SHAPE
    lower = np.full(_N_THETA, math.log(MIN_EFFICIENCY))
    upper = np.zeros(_N_THETA)
    lower[_OVERHEAD:] = math.log(MIN_MS)
    upper[_OVERHEAD:] = math.log(1e6)
    lower[_OFFSET:_CONSTANT], upper[_OFFSET:_CONSTANT] = -MAX_CLASS_OFFSET, MAX_CLASS_OFFSET
    lower[_PER_GROUP], upper[_PER_GROUP] = math.log(1e-9), math.log(1e3)
    lower[_SHAPE:], upper[_SHAPE:] = math.log(1e-6), math.log(1e6)
    free = structure.free()
    fixed = np.clip(starts[0], lower + 1e-9, upper - 1e-9)

    def full(x: np.ndarray) -> np.ndarray:
        t = fixed.copy()
        t[free] = x
        return t

    theta = fixed
    for stage, power in enumerate(SMOOTH_MAX_POWERS):
        def residuals(x: np.ndarray, power: float = power) -> np.ndarray:
            t = full(x)
            total = _predict(t, f, power, structure)[0]
            return np.concatenate([np.log(total) - log_measured,
                                   (weight * (t - prior))[free]])

        def jacobian(x: np.ndarray, power: float = power) -> np.ndarray:
            t = full(x)
            total, compute, memory, overhead, group, d_shape = _predict(t, f, power,
                                                                        structure)
            d_c = -(f.counts @ (onehot * compute[:, None]))
            d_m = -(f.counts @ (onehot * memory[:, None]))
            d_o = (f.counts @ overhead)[:, None]
            d_offset = f.counts @ (onehot * overhead[:, None])
            d_k = np.full((len(total), 1), math.exp(t[_CONSTANT]))
            d_g = (f.counts @ group)[:, None]
            d_s = f.counts @ (d_shape * compute[:, None])
            data = np.hstack([d_c, d_m, d_o, d_offset, d_k, d_g, d_s]) / total[:, None]
            return np.vstack([data[:, free], np.diag(weight[free])])

        tries = [np.clip(x, lower + 1e-9, upper - 1e-9) for x in starts] if stage == 0 \
            else [theta]
        results = [least_squares(residuals, x[free], jac=jacobian,
                                 bounds=(lower[free], upper[free]), loss="soft_l1",
                                 f_scale=NOISE_SIGMA, x_scale=1.0, max_nfev=200, method="trf")
                   for x in tries]
        theta = full(min(results, key=lambda r: r.cost).x)
    return np.asarray(theta)


def fit(features: Features, measured: np.ndarray, base: HardwareProfile,
        structure: Structure = Structure()) -> Fit:
    """Fit the constants of ``base``'s roofline to measured network times (ms)."""
    measured = np.asarray(measured, dtype=np.float64)
    prior = _prior(base)
    return Fit(features.rules, structure,
               _solve(features, measured, prior, _starts(features, measured, prior), structure))


def _starts(f: Features, measured: np.ndarray, prior: np.ndarray) -> list[np.ndarray]:
    """The datasheet, and the datasheet with one term made to explain the median network
    alone (compute, memory or overhead): where the datasheet is far off, the term that
    really dominates may start out losing every kernel's max."""
    start = prior.copy()
    # the constant starts at a small share of the fastest network (the data decide)
    start[_CONSTANT] = math.log(max(0.01 * float(measured.min()), 2 * MIN_MS))
    compute = f.counts @ f.compute_ms
    memory = f.counts @ f.memory_ms
    kernels = np.asarray(f.counts.sum(axis=1)).ravel()
    out = [start]
    for part, term in ((slice(0, _EFF_M), compute), (slice(_EFF_M, _OVERHEAD), memory)):
        alone = start.copy()
        alone[part] = math.log(min(max(float(np.median(term / measured)), MIN_EFFICIENCY), 1.0))
        out.append(alone)
    alone = start.copy()
    alone[_OVERHEAD] = math.log(max(float(np.median(measured / kernels)), MIN_MS))
    out.append(alone)
    return out


def folds(n: int, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Indices of ``min(k, n)`` seeded, near-equal folds of ``n`` items."""
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[i::min(k, n)]) for i in range(min(k, n))]


def cross_validate(features: Features, measured: np.ndarray, base: HardwareProfile,
                   structure: Structure = Structure(), k: int = 5, seed: int = 0,
                   ) -> np.ndarray:
    """Out-of-fold predictions (ms): each network predicted by a fit that never saw it."""
    out = np.empty(len(measured))
    everyone = np.arange(len(measured))
    for held in folds(len(measured), k, seed):
        train = np.setdiff1d(everyone, held)
        out[held] = fit(features.subset(train), measured[train], base, structure).predict(
            features.subset(held))
    return out


@dataclass(frozen=True)
class Calibration:
    """The chosen fit, its cross-validated predictions, and what each candidate scored."""

    fit: Fit
    cross_validated: dict[str, float | int]
    fusion_scores: dict[str, float]  # fusion label -> its best structure's CV |log error|
    structure_scores: dict[str, float]  # structure label -> CV |log error| (chosen fusion)
    oof_ms: np.ndarray


def fusion_label(rules: FusionRules) -> str:
    return (f"conv_norm_act={str(rules.conv_norm_act).lower()},"
            f"residual_add={str(rules.residual_add).lower()}")


def calibrate(specs: Sequence[ArchSpec], batches: Sequence[int] | np.ndarray,
              measured: Sequence[float] | np.ndarray, base: HardwareProfile,
              fusion: Sequence[FusionRules] = FUSION_CHOICES,
              structures: Sequence[Structure] = STRUCTURES, k: int = 5,
              seed: int = 0) -> Calibration:
    """Fit ``base`` to measured networks; the fusion and structure with least CV error win."""
    return calibrate_features({rules: featurize(specs, batches, base, rules)
                               for rules in fusion}, measured, base, structures, k, seed)


def calibrate_features(candidates: dict[FusionRules, Features],
                       measured: Sequence[float] | np.ndarray, base: HardwareProfile,
                       structures: Sequence[Structure] = STRUCTURES, k: int = 5,
                       seed: int = 0) -> Calibration:
    """:func:`calibrate` on networks already featurized under each candidate fusion.

    Every fusion x structure is scored by its cross-validated mean |log error|; a richer
    structure must beat a simpler one (earlier in ``structures``) to be chosen.
    """
    from archdesign.hardware.validate import metrics

    measured = np.asarray(measured, dtype=np.float64)
    if len(measured) < MIN_NETWORKS:
        raise InputError(f"calibration needs at least {MIN_NETWORKS} measured networks, "
                         f"got {len(measured)}")
    best: tuple[float, FusionRules, Structure, np.ndarray] | None = None
    scores: dict[tuple[FusionRules, Structure], float] = {}
    for rules, features in candidates.items():
        for structure in structures:
            oof = cross_validate(features, measured, base, structure, k, seed)
            score = float(np.mean(np.abs(np.log(oof / measured))))
            scores[(rules, structure)] = score
            if best is None or score < best[0] - 1e-12:
                best = (score, rules, structure, oof)
    if best is None:
        raise ValueError("calibrate_features: no candidates")
    _, rules, structure, oof = best
    fusion_scores = {fusion_label(r): min(v for (rr, _), v in scores.items() if rr == r)
                     for r in candidates}
    structure_scores = {s.label: v for (r, s), v in scores.items() if r == rules}
    return Calibration(fit(candidates[rules], measured, base, structure),
                       metrics(oof, measured), fusion_scores, structure_scores, oof)


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
            "structure": result.fit.structure.label,
            "structure_scores": result.structure_scores,
            "loss": f"soft-L1 on log(predicted/measured), scale {NOISE_SIGMA}",
            "prior_sigma": {"efficiency": PRIOR_SIGMA_EFFICIENCY,
                            "overhead": PRIOR_SIGMA_OVERHEAD,
                            "class_overhead": PRIOR_SIGMA_CLASS_OVERHEAD,
                            "shape": PRIOR_SIGMA_SHAPE},
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
