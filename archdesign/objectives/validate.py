"""Does an objective predict accuracy? Rank agreement with trained networks, and a fitted
objective from a handful of them.

Figures of one objective over n networks (truth oriented so that larger is better):

- Kendall tau (tau-b) and Spearman rho of score vs truth;
- tau within equal-FLOPs groups: the networks binned by FLOPs deciles, concordant minus
  discordant pairs over all pairs of one bin (ties left out): does the score see more than
  size?
- top-10% precision: of the ceil(n/10) networks the objective ranks highest, the fraction
  among the ceil(n/10) truly best.

:func:`fit` combines registered objectives with non-negative weights on their standardized
scores, maximizing a smooth surrogate of rank agreement (the pairwise logistic loss of every
ordered pair) with an L2 penalty that keeps the weights spread over correlated terms, so
that 10-20 networks are enough; its tau is leave-one-out: each network is ranked by a
combination fitted without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from archdesign.errors import InputError
from archdesign.objectives.base import FITTED, Objective, get_objective, list_objectives
from archdesign.objectives.fitted import FittedObjective, Term
from archdesign.spec import ArchSpec

FLOPS_BINS = 10
TOP_FRACTION = 0.1
DEFAULT_L2 = 1.0
MIN_NETWORKS = 4


@dataclass(frozen=True, slots=True)
class Agreement:
    """Rank agreement of one objective with the truth."""

    objective: str
    n: int
    kendall_tau: float
    spearman: float
    tau_within_flops: float  # nan when no bin holds two networks of different truth
    top10_precision: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}


def _pair_tau(scores: np.ndarray, truth: np.ndarray, same: np.ndarray) -> float:
    """(concordant − discordant) / (concordant + discordant) over the pairs in ``same``."""
    sign = np.sign(scores[:, None] - scores[None, :]) * np.sign(truth[:, None] - truth[None, :])
    upper = np.triu(same, k=1)
    concordant, discordant = int((sign[upper] > 0).sum()), int((sign[upper] < 0).sum())
    total = concordant + discordant
    return (concordant - discordant) / total if total else math.nan


def flops_bins(flops: Sequence[float] | np.ndarray, bins: int = FLOPS_BINS) -> np.ndarray:
    """Each network's FLOPs-decile bin (0..bins-1)."""
    values = np.log(np.asarray(flops, dtype=float))
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, values, side="right")


def agreement(name: str, scores: Sequence[float] | np.ndarray,
              truth: Sequence[float] | np.ndarray,
              flops: Sequence[float] | np.ndarray) -> Agreement:
    """The figures of the module docstring; ``truth``: larger is better."""
    from scipy.stats import kendalltau, spearmanr

    s, t = np.asarray(scores, dtype=float), np.asarray(truth, dtype=float)
    if len(s) != len(t) or len(s) != len(flops):
        raise ValueError("agreement: scores, truth and flops differ in length")
    # a non-finite score (e.g. NASWOT's -inf for a singular kernel) ranks as it compares
    s = np.nan_to_num(s, nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    finite = s[np.isfinite(s)]
    low, high = (finite.min() - 1, finite.max() + 1) if finite.size else (0.0, 0.0)
    ranked = np.where(s == -np.inf, low, np.where(s == np.inf, high, s))
    tau = float(kendalltau(ranked, t).statistic)
    rho = float(spearmanr(ranked, t).statistic)
    bins = flops_bins(flops)
    within = _pair_tau(ranked, t, bins[:, None] == bins[None, :])
    k = max(1, math.ceil(TOP_FRACTION * len(s)))
    top_score = set(np.argsort(-ranked, kind="stable")[:k].tolist())
    top_truth = set(np.argsort(-t, kind="stable")[:k].tolist())
    return Agreement(name, len(s), tau, rho, within, len(top_score & top_truth) / k)


def score_matrix(specs: Sequence[ArchSpec], objectives: Sequence[Objective]) -> np.ndarray:
    """scores[i, k]: objective k of network i."""
    return np.array([[o.score(spec) for o in objectives] for spec in specs], dtype=float)


def resolve(objectives: Sequence[str | Objective] | None) -> list[Objective]:
    """Objectives by name or as given; ``None``: every registered one (default settings)."""
    names = list(objectives) if objectives else list_objectives()
    return [o if isinstance(o, Objective) else get_objective(o) for o in names]


def validate(specs: Sequence[ArchSpec], truth: Sequence[float],
             objectives: Sequence[str | Objective] | None = None,
             scores: np.ndarray | None = None) -> list[Agreement]:
    """Rank agreement of each objective (default: every registered one) with ``truth``;
    ``scores``: their :func:`score_matrix` when it is already computed."""
    from archdesign.cost import cost

    _check_networks(specs, truth)
    scorers = resolve(objectives)
    if scores is None:
        scores = score_matrix(specs, scorers)
    flops = [cost(s).flops for s in specs]
    return [agreement(_label(o), scores[:, k], truth, flops) for k, o in enumerate(scorers)]


def _label(objective: Objective) -> str:
    """The objective's name, with the settings that differ from its defaults."""
    if isinstance(objective, FittedObjective):
        return FITTED
    defaults = get_objective(objective.name).settings()
    changed = {k: v for k, v in objective.settings().items() if defaults.get(k) != v}
    return objective.name + "".join(f" {k}={v}" for k, v in changed.items())


def _check_networks(specs: Sequence[ArchSpec], truth: Sequence[float]) -> None:
    if len(specs) != len(truth):
        raise ValueError("specs and truth differ in length")
    if len(specs) < MIN_NETWORKS:
        raise InputError(f"rank agreement needs at least {MIN_NETWORKS} networks with a "
                         f"value, got {len(specs)}")
    if len(set(truth)) < 2:
        raise InputError("every network has the same measured value: nothing to rank")


def _weights(z: np.ndarray, truth: np.ndarray, l2: float) -> np.ndarray:
    """Non-negative w minimizing mean pairwise logistic loss + l2/2·|w|²."""
    from scipy.optimize import minimize

    better, worse = np.nonzero(truth[:, None] > truth[None, :])
    diffs = z[better] - z[worse]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = diffs @ w
        value = np.logaddexp(0.0, -margin).mean() + 0.5 * l2 * w @ w
        # d/dm log(1 + e^-m) = -sigmoid(-m)
        grad = -(diffs * (0.5 * (1 - np.tanh(margin / 2)))[:, None]).mean(axis=0) + l2 * w
        return float(value), grad

    start = np.full(z.shape[1], 1.0 / z.shape[1])
    result = minimize(loss, start, jac=True, method="L-BFGS-B",
                      bounds=[(0.0, None)] * z.shape[1])
    weights: np.ndarray = result.x
    return weights


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


@dataclass(frozen=True, slots=True)
class Fit:
    """A fitted objective, its agreement on the networks it saw and held out."""

    objective: FittedObjective
    train: Agreement
    held_out: Agreement  # each network scored by a combination fitted without it
    dropped: tuple[str, ...]  # terms left out: constant or not finite on some network


def fit(specs: Sequence[ArchSpec], truth: Sequence[float],
        objectives: Sequence[str | Objective] | None = None, l2: float = DEFAULT_L2,
        source: dict[str, Any] | None = None, scores: np.ndarray | None = None) -> Fit:
    """The non-negative combination of ``objectives`` (default: every registered one) that
    best ranks ``truth`` (larger is better), with its leave-one-out agreement; ``scores``:
    their :func:`score_matrix` when it is already computed."""
    from archdesign.cost import cost

    _check_networks(specs, truth)
    if l2 <= 0:
        raise InputError(f"fit l2: must be > 0, got {l2}")
    scorers = resolve(objectives)
    for o in scorers:
        if isinstance(o, FittedObjective):
            raise InputError(f"--objective: a fitted objective cannot be a term of another; "
                             f"name registered objectives {list_objectives()}")
    names = [o.name for o in scorers]
    raw = score_matrix(specs, scorers) if scores is None else scores
    usable = [k for k in range(len(names))
              if np.isfinite(raw[:, k]).all() and raw[:, k].std() > 0]
    if not usable:
        raise InputError(f"no objective of {names} has a finite, varying score on these "
                         f"networks")
    x = raw[:, usable]
    t = np.asarray(truth, dtype=float)
    flops = [cost(s).flops for s in specs]

    held_out = np.empty(len(t))
    for i in range(len(t)):
        keep = np.arange(len(t)) != i
        mean, std = _standardize(x[keep])
        w = _weights((x[keep] - mean) / std, t[keep], l2)
        held_out[i] = ((x[i] - mean) / std) @ w
    mean, std = _standardize(x)
    w = _weights((x - mean) / std, t, l2)
    loo = agreement(FITTED, held_out, t, flops)
    train = agreement(FITTED, (x - mean) / std @ w, t, flops)
    validation = {**(source or {}), "n": len(t), "l2": l2,
                  **{f"loo_{k}": v for k, v in loo.to_dict().items()
                     if k not in ("objective", "n")}}
    terms = [Term(names[k], float(mean[j]), float(std[j]), float(w[j]),
                  scorers[k].settings()) for j, k in enumerate(usable)]
    if not any(term.weight > 0 for term in terms):
        raise InputError("the fit put weight 0 on every objective: none of them ranks these "
                         "networks better than chance")
    dropped = tuple(names[k] for k in range(len(names)) if k not in usable)
    return Fit(FittedObjective(terms, validation), train, loo, dropped)
