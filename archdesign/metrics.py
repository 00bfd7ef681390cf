"""The metrics of a design: their names and directions, reading and printing quantities,
and the feasibility and binding of budgets.

One module for what the search, the reports, the exporter and the CLI all say about a
metric, so that ``--latency 2ms``, a front's ``1.23 ms`` and "feasible" mean the same
everywhere. Budgets are Optuna constraints ``value / budget - 1`` (feasible when <= 0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archdesign.errors import InputError


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    maximize: bool
    unit: str
    description: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("score", True, "", "training-free expressiveness score (DeepMAD by default)"),
    Metric("latency", False, "ms", "predicted latency on the hardware profile"),
    Metric("flops", False, "MAC", "multiply-accumulates (fvcore convention)"),
    Metric("params", False, "", "parameters"),
    Metric("activations", False, "", "output elements of conv, linear and pooling layers"),
    Metric("memory", False, "B", "peak activation bytes + weight bytes at the batch and "
                                 "dtype"),
    Metric("rho", False, "", "DeepMAD effectiveness: conv layers per unit of mean log "
                             "width (0.3-0.5 is trainable, DeepMAD's rule)"),
)}

OBJECTIVE_NAMES: tuple[str, ...] = tuple(METRICS)
BUDGET_NAMES: tuple[str, ...] = ("latency", "flops", "params", "activations", "memory", "rho")
# A budget "binds" a design that uses at least this fraction of it.
BINDING_FRACTION = 0.95


def check_metric(name: str, allowed: Sequence[str], what: str) -> str:
    if name not in allowed:
        raise InputError(f"{what}: {name!r} is not one of {list(allowed)}")
    return name


# -- quantities ----------------------------------------------------------------------------


_UNITS: dict[str, dict[str, float]] = {
    "latency": {"": 1.0, "ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3, "ns": 1e-6},
    # bytes; a bare SI prefix (8M) is decimal, as for counts
    "memory": {"": 1.0, "b": 1.0, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9,
               "gb": 1e9, "kib": 2.0**10, "mib": 2.0**20, "gib": 2.0**30},
    "count": {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12},
    "rho": {"": 1.0},
}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*$")


def parse_quantity(metric: str, text: str | float, option: str | None = None) -> float:
    """``"5ms"`` -> 5.0 (ms), ``"600M"`` -> 6e8, ``"2MiB"`` -> 2097152.0 (bytes).

    ``option``: the name errors give (default ``--METRIC``).
    """
    check_metric(metric, BUDGET_NAMES, "budget")
    option = option or f"--{metric}"
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _QUANTITY.match(str(text))
        table = _UNITS.get(metric, _UNITS["count"])
        unit = match.group(2).lower() if match else ""
        if metric not in _UNITS:
            unit = re.sub(r"(flops?|macs?)$", "", unit)
        if not match or unit not in table:
            allowed = ", ".join(u for u in table if u) or "none"
            raise InputError(f"{option}: expected a number with an optional unit "
                             f"({allowed}), got {text!r}")
        value = float(match.group(1)) * table[unit]
    if not (value > 0 and math.isfinite(value)):
        raise InputError(f"{option}: the budget must be a positive number, got {text!r}")
    return value


def format_metric(name: str, value: float) -> str:
    """A metric value for people: ``1.23 ms``, ``312.5M``, ``4.20 MiB``."""
    if name == "latency":
        return f"{value:.3g} ms" if value >= 0.01 else f"{value * 1e3:.3g} us"
    if name == "memory":
        for unit, scale in (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
            if value >= scale:
                return f"{value / scale:.2f} {unit}"
        return f"{value:.0f} B"
    if name == "score":
        return f"{value:.4g}"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{unit}"
    return f"{value:.4g}"


def format_budgets(budgets: Mapping[str, float]) -> str:
    """``latency <= 2 ms, params <= 5M``, or ``none``."""
    return ", ".join(f"{k} <= {format_metric(k, v)}" for k, v in budgets.items()) or "none"


# -- budgets -------------------------------------------------------------------------------


def constraints(metrics: Mapping[str, float], budgets: Mapping[str, float]) -> dict[str, float]:
    """Optuna constraint values: ``value / budget - 1`` (feasible when <= 0)."""
    return {name: metrics[name] / budget - 1.0 for name, budget in sorted(budgets.items())}


def binding(metrics: Mapping[str, float], budgets: Mapping[str, float]) -> list[str]:
    """The budgets a design uses at least ``BINDING_FRACTION`` of."""
    return [name for name, budget in sorted(budgets.items())
            if metrics[name] >= BINDING_FRACTION * budget]


def feasible(trial: Any) -> bool:
    """Whether an Optuna trial is complete and within every budget it was told."""
    from optuna.trial import TrialState

    return trial.state == TrialState.COMPLETE and all(
        v <= 0 for v in (trial.constraints or {}).values())


def distinct_texts(values: Sequence[float], digits: int = 4) -> list[str]:
    """``values`` with the fewest significant digits (at least ``digits``) at which
    different values print differently: 1.23456 and 1.23461 do not both show as 1.235."""
    distinct = len(set(values))
    for d in range(digits, 18):
        texts = [f"{v:.{d}g}" for v in values]
        if len(set(texts)) == distinct:
            return texts
    return [repr(v) for v in values]


def metric_texts(name: str, values: Sequence[float]) -> list[str]:
    """A column of metric ``name`` for people: scores with the digits that tell different
    ones apart, the others as :func:`format_metric` writes them."""
    if name == "score":
        return distinct_texts(values)
    return [format_metric(name, v) for v in values]
