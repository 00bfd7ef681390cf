"""Several runs' fronts on one hypervolume frame, as a table and a plot.

Each run's own hypervolume is measured in its own frame (its space's extent and its
budgets), so two runs' figures are not comparable. Here every run is measured again in
the **common frame**: per objective, the best ideal and the worst reference of the runs'
own frames, a box that holds every run's frame. The runs must share their objectives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archdesign.errors import InputError
from archdesign.pareto import Frame, hypervolume, pareto_mask, to_minimized
from archdesign.report import (
    Plot,
    RunSummary,
    Series,
    axes,
    axis_label,
    draw,
    front_order,
    hover_texts,
    load_run,
    log_x,
    run_points,
)

#: Line colours of the runs in a comparison plot (matplotlib's tab10, red last).
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf", "#d62728")


@dataclass(frozen=True)
class Comparison:
    names: list[str]  # the runs as given
    summaries: list[RunSummary]
    frame: Frame  # the common frame
    hypervolumes: list[float]  # each run's front in the common frame
    joint: list[int]  # each run's front points on the front of all runs together

    @property
    def objectives(self) -> tuple[str, ...]:
        return tuple(self.summaries[0].config.objectives)

    def to_dict(self) -> dict[str, object]:
        return {"objectives": list(self.objectives),
                "frame": {"kind": "common: the union of the runs' own frames",
                          **self.frame.to_dict()},
                "runs": [{"run": name, "space": s.config.space,
                          "hardware": s.config.hardware, "strategy": s.config.strategy,
                          "trials": s.done, "feasible": s.feasible, "front": len(s.front),
                          "own_frame": s.frame.to_dict(), "own_hypervolume": s.hypervolume,
                          "hypervolume": hv, "on_joint_front": joint}
                         for name, s, hv, joint in zip(self.names, self.summaries,
                                                       self.hypervolumes, self.joint,
                                                       strict=True)]}


def common_frame(frames: Sequence[Frame]) -> Frame:
    """The smallest frame holding every one of ``frames``: the best ideal and the worst
    reference of each objective."""
    return Frame(tuple(np.min([f.ideal for f in frames], axis=0).tolist()),
                 tuple(np.max([f.reference for f in frames], axis=0).tolist()))


def front_values(summary: RunSummary) -> np.ndarray:
    """The minimized objective values of the front's networks (one row per listed one)."""
    p = summary.points
    return to_minimized(p["values"][p["front"]], summary.config.maximize)


def compare(summaries: Sequence[RunSummary], names: Sequence[str]) -> Comparison:
    """The comparison of ``summaries`` (named ``names``) in their common frame."""
    if len(summaries) < 2:
        raise InputError("compare: give two or more runs")
    first = summaries[0].config.objectives
    for name, s in zip(names, summaries, strict=True):
        if s.config.objectives != first:
            raise InputError(f"{name}: its objectives {list(s.config.objectives)} differ "
                             f"from {names[0]}'s {list(first)}; compare needs runs of the "
                             f"same objectives")
    frame = common_frame([s.frame for s in summaries])
    fronts = [front_values(s) for s in summaries]
    hypervolumes = [hypervolume(f, frame) for f in fronts]
    joint_mask = pareto_mask(np.vstack(fronts))
    owner = np.repeat(np.arange(len(fronts)), [len(f) for f in fronts])
    joint = [int(joint_mask[owner == i].sum()) for i in range(len(fronts))]
    return Comparison(list(names), list(summaries), frame, hypervolumes, joint)


def compare_runs(paths: Sequence[str | Path]) -> Comparison:
    """Read the runs at ``paths`` (read only) and compare them; a run given twice (under
    any name) is an :class:`InputError`."""
    seen: dict[Path, str] = {}
    for p in paths:
        real = Path(p).resolve()
        if real in seen:
            same = "" if str(p) == seen[real] else f" (the run {seen[real]})"
            raise InputError(f"{p}: given twice{same}; compare needs two or more different "
                             f"runs")
        seen[real] = str(p)
    return compare([load_run(p) for p in paths], [str(p) for p in paths])


def comparison_plot(c: Comparison) -> Plot:
    """Every run's front, one colour each; hover says the run, trial and metrics."""
    yi, xi = axes(c.objectives)
    x_metric = c.objectives[xi] if xi is not None else None
    series = []
    all_x = []
    for k, (name, s, hv) in enumerate(zip(c.names, c.summaries, c.hypervolumes,
                                          strict=True)):
        x, y = run_points(s)
        idx = front_order(s, x)
        all_x.append(x[idx])
        series.append(Series(f"{name}: {s.config.space} on {s.config.hardware} "
                             f"({s.config.strategy}), front {len(idx)}, hv {hv:.4f}",
                             x[idx], y[idx], hover_texts(s, idx, f"{name}<br>"),
                             COLORS[k % len(COLORS)], "front"))
    units = ", ".join(f"{m} in {unit}" for m in (c.objectives[yi], x_metric)
                      if m is not None and (unit := _unit(m)))
    title = (f"Pareto fronts of {len(c.names)} runs{f' ({units})' if units else ''}; "
             f"hypervolume (hv) in the common frame, the union of the runs' own frames")
    xs = np.concatenate(all_x) if all_x else np.zeros(0)
    return Plot(title, axis_label(x_metric) if x_metric else "trial",
                axis_label(c.objectives[yi]), log_x(x_metric, xs), series)


def _unit(metric: str) -> str:
    from archdesign.metrics import METRICS

    return METRICS[metric].unit


def plot_comparison(c: Comparison, path: str | Path) -> Path:
    return draw(comparison_plot(c), path)
