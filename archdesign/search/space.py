"""The space as the search sees it: Optuna distributions, its extent, the hypervolume frame.

The frame (ideal and reference of each minimized objective) is fixed when a run starts,
stored in the run directory (``frame.json``) and read back by every reader, so that a
run's hypervolume never moves with the code that would recompute it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from archdesign.errors import InputError, read_data_file
from archdesign.evaluate import LocalEvaluator
from archdesign.metrics import BUDGET_NAMES, METRICS, format_metric
from archdesign.pareto import Frame
from archdesign.runs import RunDir, RunError
from archdesign.search.config import SearchConfig
from archdesign.spaces import Parameter, SearchSpace, Value

FRAME_FILE = "frame.json"


def distribution(param: Parameter) -> Any:
    """The Optuna distribution of a search-space parameter."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if param.kind == "categorical":
        return CategoricalDistribution(list(param.choices))
    assert param.low is not None and param.high is not None
    if param.kind == "int":
        step = int(param.step or 1)
        log = param.log and step == 1  # Optuna allows log only with step 1
        return IntDistribution(int(param.low), int(param.high), step=step, log=log)
    return FloatDistribution(param.low, param.high, log=param.log and not param.step,
                             step=None if param.log else param.step)


def distributions(space: SearchSpace) -> dict[str, Any]:
    return {p.name: distribution(p) for p in space.parameters}


def _extreme(param: Parameter, largest: bool) -> Value:
    if param.kind == "categorical":
        numeric = [c for c in param.choices if isinstance(c, (int, float))
                   and not isinstance(c, bool)]
        if len(numeric) == len(param.choices):
            return max(numeric) if largest else min(numeric)
        return param.default
    assert param.low is not None and param.high is not None
    if param.kind == "int":
        step = int(param.step or 1)
        return int(param.low) + step * ((int(param.high) - int(param.low)) // step) \
            if largest else int(param.low)
    return param.high if largest else param.low


@dataclass(frozen=True)
class SpaceExtent:
    """Metrics of the smallest and largest networks of the space and of random samples."""

    smallest: dict[str, float] | None
    minimum: dict[str, float]  # per metric, over everything evaluated
    maximum: dict[str, float]
    samples: list[dict[str, float]]  # the metrics of everything evaluated


def space_extent(evaluator: LocalEvaluator, seed: int, samples: int = 256) -> SpaceExtent:
    space = evaluator.space
    rng = np.random.default_rng(seed)
    candidates = [(0, {p.name: _extreme(p, False) for p in space.parameters}),
                  (1, {p.name: _extreme(p, True) for p in space.parameters})]
    candidates += [(2 + i, space.sample(rng)) for i in range(samples)]
    results = [e for e in evaluator.evaluate(candidates) if e.ok]
    if not results:
        raise InputError(f"space {space.name!r}: no sampled network could be evaluated")
    smallest = results[0].metrics if results[0].number == 0 else None
    minimum = {m: min(e.metrics[m] for e in results) for m in METRICS}
    maximum = {m: max(e.metrics[m] for e in results) for m in METRICS}
    return SpaceExtent(smallest, minimum, maximum, [e.metrics for e in results])


def make_frame(config: SearchConfig, extent: SpaceExtent) -> Frame:
    """The fixed hypervolume frame: ideal and reference of each (minimized) objective.

    A budgeted objective's reference is its budget; otherwise the worst value seen over
    the space's extremes and samples (the score's lowest, the other metrics' highest).
    """
    ideal, reference = [], []
    for name in config.objectives:
        lo, hi = extent.minimum[name], extent.maximum[name]
        if METRICS[name].maximize:
            ideal.append(-hi)
            reference.append(-lo)
        else:
            ideal.append(lo)
            reference.append(min(hi, config.budgets.get(name, math.inf)))
        if not reference[-1] > ideal[-1]:
            reference[-1] = ideal[-1] + max(abs(ideal[-1]) * 1e-6, 1e-12)
    return Frame(tuple(ideal), tuple(reference))


def check_budgets(config: SearchConfig, extent: SpaceExtent) -> None:
    """An impossible budget is an InputError saying what the cheapest network costs."""
    for name, budget in config.budgets.items():
        cheapest = extent.minimum[name]
        if cheapest > budget:
            smallest = extent.smallest or {}
            figures = ", ".join(f"{m} {format_metric(m, smallest[m])}" for m in BUDGET_NAMES
                                if m in smallest)
            raise InputError(
                f"--{name} {format_metric(name, budget)}: impossible in space "
                f"{config.space!r} on {config.hardware!r}: the cheapest network of the space "
                f"needs {format_metric(name, cheapest)}"
                + (f" (its smallest network: {figures})" if figures else ""))


def frame_for(config: SearchConfig) -> Frame:
    """The hypervolume frame of ``config``, computed from the space's extent."""
    local = LocalEvaluator(config.eval_config)
    return make_frame(config, space_extent(local, config.seed))


def store_frame(run: RunDir, frame: Frame) -> None:
    run.write_text(FRAME_FILE, json.dumps(frame.to_dict(), indent=2) + "\n")


def run_frame(run: RunDir, config: SearchConfig) -> Frame:
    """The frame stored with the run; computed from its sources for a run made before
    frames were stored."""
    path = run / FRAME_FILE
    if not path.exists():
        return frame_for(run.with_sources(config, always=True))
    data = read_data_file(path, "hypervolume frame", RunError)
    n = len(config.objectives)
    for key in ("ideal", "reference"):
        values = data.get(key) if isinstance(data, dict) else None
        if not (isinstance(values, list) and len(values) == n and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in values)):
            raise RunError(f"{path}: {key}: expected a list of {n} finite numbers, one per "
                           f"objective ({', '.join(config.objectives)}), got {values!r}")
    try:
        return Frame(tuple(map(float, data["ideal"])), tuple(map(float, data["reference"])))
    except ValueError as exc:
        raise RunError(f"{path}: {exc} (each reference must be worse than its ideal)") \
            from None
