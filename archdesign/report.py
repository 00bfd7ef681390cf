"""The results of a run: its Pareto front as data, JSON, CSV, and plots (PNG or HTML).

Everything is computed from the trials in the run's study storage, the single record of
what was evaluated, so ``archdesign pareto`` and the files a search writes agree.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archdesign.errors import InputError, read_data_file
from archdesign.files import atomic_write_bytes
from archdesign.metrics import METRICS, binding, feasible, metric_texts
from archdesign.pareto import Frame, hypervolume, pareto_mask, to_minimized
from archdesign.runs import STUDY_NAME, RunDir, RunError

if TYPE_CHECKING:
    from archdesign.search import SearchConfig

logger = logging.getLogger(__name__)

MEASURED_FILE = "measured.json"


@dataclass(frozen=True)
class FrontEntry:
    rank: int
    trial: int
    params: dict[str, Any]
    metrics: dict[str, float]
    binding: list[str]
    spec: dict[str, Any]
    measured_latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "trial": self.trial, "metrics": self.metrics,
                "binding": self.binding, "measured_latency_ms": self.measured_latency_ms,
                "params": self.params, "spec": self.spec}


@dataclass(frozen=True)
class RunSummary:
    config: SearchConfig
    frame: Frame
    done: int
    feasible: int
    failed: int
    hypervolume: float
    front: list[FrontEntry]
    points: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.config.space, "hardware": self.config.hardware,
            "strategy": self.config.strategy, "seed": self.config.seed,
            "objectives": [{"name": m, "direction": "maximize" if METRICS[m].maximize
                            else "minimize", "unit": METRICS[m].unit}
                           for m in self.config.objectives],
            "budgets": dict(self.config.budgets),
            "trials": self.done, "feasible": self.feasible, "failed": self.failed,
            "hypervolume": self.hypervolume, "frame": self.frame.to_dict(),
            "front": [e.to_dict() for e in self.front],
        }

    def entry(self, trial: int) -> FrontEntry | None:
        return next((e for e in self.front if e.trial == trial), None)


def load_trials(run: RunDir, config: SearchConfig) -> list[Any]:
    """The finished trials recorded in ``run``'s storage, in trial-number order."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = run.read_storage(config.storage)
    try:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    except KeyError:
        raise RunError(f"{run.path}: the storage holds no study yet (did the search start?)"
                       ) from None
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    return sorted(trials, key=lambda t: t.number)


def read_measured(run: RunDir) -> dict[int, dict[str, float]]:
    path = run / MEASURED_FILE
    if not path.exists():
        return {}
    data = read_data_file(path, "measurements", RunError)
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and k.isdigit() and isinstance(v, dict) for k, v in data.items()):
        raise RunError(f"{path}: unreadable measurements (expected a mapping of trial "
                       f"numbers to their measurements, e.g. {{\"12\": {{\"latency_ms\": "
                       f"3.1}}}})")
    return {int(k): v for k, v in data.items()}


def summarize(trials: Sequence[Any], config: SearchConfig, frame: Frame,
              measured: dict[int, dict[str, float]] | None = None) -> RunSummary:
    """The front (sorted by the first objective, best first) and the run's figures."""
    from optuna.trial import TrialState

    measured = measured or {}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = len(trials) - len(complete)
    feasible_mask = np.array([feasible(t) for t in complete], dtype=bool)
    values = np.array([t.values for t in complete], dtype=float).reshape(
        len(complete), len(config.objectives))
    minimized = to_minimized(values, config.maximize)
    feasible_idx = np.flatnonzero(feasible_mask)
    on_front = feasible_idx[pareto_mask(minimized[feasible_idx])] if len(feasible_idx) else \
        feasible_idx
    # Best first by the first objective; equal designs in trial order.
    keys = (np.array([complete[i].number for i in on_front]), *minimized[on_front].T[::-1])
    order = on_front[np.lexsort(keys)] if len(on_front) else on_front
    front: list[FrontEntry] = []
    seen: set[str] = set()
    for i in order.tolist():
        t = complete[i]
        # Samplers may propose a network twice: list it once, as its first trial.
        key = json.dumps(t.user_attrs["spec"], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        metrics = dict(t.user_attrs["metrics"])
        front.append(FrontEntry(len(front) + 1, t.number, dict(t.params), metrics,
                                binding(metrics, config.budgets), dict(t.user_attrs["spec"]),
                                measured.get(t.number, {}).get("latency_ms")))
    # The plotted front is the table's: one point per listed network.
    listed = {e.trial for e in front}
    numbers = np.array([t.number for t in complete], dtype=int)
    points = {"values": values, "feasible": feasible_mask,
              "front": np.isin(numbers, sorted(listed)), "numbers": numbers,
              **{f"metric:{m}": np.array([t.user_attrs["metrics"].get(m, np.nan)
                                          for t in complete], dtype=float) for m in METRICS}}
    hv = hypervolume(minimized[on_front], frame) if len(on_front) else 0.0
    return RunSummary(config, frame, len(trials), int(feasible_mask.sum()), failed, hv, front,
                      points)


def load_run(path: str | Path) -> RunSummary:
    """The summary of the run in ``path``, read only (:class:`RunError` if it is none)."""
    from archdesign.search import run_frame

    run = RunDir(path).require()
    config = run.search_config()
    return summarize(load_trials(run, config), config, run_frame(run, config),
                     read_measured(run))


def front_csv(summary: RunSummary) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    metric_names = list(METRICS)
    writer.writerow(["rank", "trial", *[_column(m) for m in metric_names], "binding",
                     "measured_latency_ms"])
    for e in summary.front:
        writer.writerow([e.rank, e.trial, *[repr(e.metrics[m]) if m in e.metrics else ""
                                            for m in metric_names],
                         " ".join(e.binding),
                         "" if e.measured_latency_ms is None else repr(e.measured_latency_ms)])
    return out.getvalue()


def _column(metric: str) -> str:
    unit = {"ms": "_ms", "B": "_bytes"}.get(METRICS[metric].unit, "")
    return metric + unit


def write_results(run: RunDir, summary: RunSummary, plot: bool = True) -> None:
    """``pareto.json``, ``pareto.csv`` and (with ``plot``) ``pareto.png``, atomically."""
    run.write_text("pareto.json", json.dumps(summary.to_dict(), indent=2) + "\n")
    run.write_text("pareto.csv", front_csv(summary))
    if plot:
        plot_front(summary, run / "pareto.png")


# -- plots ---------------------------------------------------------------------------------

#: What the hover text of a point says (the metrics a reader compares designs by).
HOVER_METRICS = ("score", "latency", "flops", "params")


@dataclass(frozen=True)
class Series:
    """One set of points of a plot, with a hover text per point."""

    label: str
    x: np.ndarray
    y: np.ndarray
    hover: list[str]
    color: str
    kind: str  # "front" (a line through the points), "points" or "faint"


@dataclass(frozen=True)
class Plot:
    title: str
    x_label: str
    y_label: str
    log_x: bool
    series: list[Series]
    x_budget: float | None = None
    budget_label: str = "budget"


def axis_label(metric: str) -> str:
    unit = METRICS[metric].unit
    direction = "higher is better" if METRICS[metric].maximize else "lower is better"
    return f"{metric}{f' ({unit})' if unit else ''}, {direction}"


def budgets_text(budgets: dict[str, float]) -> str:
    from archdesign.metrics import format_metric

    return ", ".join(f"{k} <= {format_metric(k, v)}" for k, v in budgets.items()) or \
        "no budgets"


def axes(objectives: Sequence[str]) -> tuple[int, int | None]:
    """Columns of the objective values on the y and x axes (x: None plots by trial)."""
    return (0, None) if len(objectives) == 1 else (0, 1)


def log_x(metric: str | None, x: np.ndarray) -> bool:
    """Whether the x axis is logarithmic (in the PNG and the HTML alike): a cost axis
    (latency, FLOPs, ...) whose values are all positive."""
    return metric not in (None, "score") and len(x) > 0 and bool(np.nanmin(x) > 0)


def hover_texts(summary: RunSummary, idx: np.ndarray, prefix: str = "") -> list[str]:
    """``trial 12<br>score 7703<br>latency 3.58 ms<br>flops 59.68M<br>params 3.439M`` per
    point (scores with the digits that tell the run's trials apart)."""
    p = summary.points
    texts = {m: metric_texts(m, p[f"metric:{m}"].tolist()) for m in HOVER_METRICS}
    out = []
    for i in idx.tolist():
        parts = [f"{m} {texts[m][i]}" for m in HOVER_METRICS
                 if np.isfinite(p[f"metric:{m}"][i])]
        out.append(f"{prefix}trial {int(p['numbers'][i])}<br>" + "<br>".join(parts))
    return out


def run_points(summary: RunSummary) -> tuple[np.ndarray, np.ndarray]:
    """The x and y of every complete trial of ``summary`` (x: the trial without a second
    objective)."""
    p = summary.points
    yi, xi = axes(summary.config.objectives)
    x = p["values"][:, xi] if xi is not None else p["numbers"].astype(float)
    return x, p["values"][:, yi]


def front_order(summary: RunSummary, x: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(summary.points["front"])
    return idx[np.argsort(x[idx], kind="stable")]


def front_plot(summary: RunSummary) -> Plot:
    p = summary.points
    c = summary.config
    yi, xi = axes(c.objectives)
    x, y = run_points(summary)
    front = front_order(summary, x)
    groups = [("over budget", np.flatnonzero(~p["feasible"]), "#dddddd", "faint"),
              ("other feasible (dominated or a repeat)",
               np.flatnonzero(p["feasible"] & ~p["front"]), "#999999", "points"),
              ("Pareto front", front, "#d62728", "front")]
    series = [Series(f"{label} ({len(idx)})", x[idx], y[idx], hover_texts(summary, idx),
                     color, kind) for label, idx, color, kind in groups]
    x_metric = c.objectives[xi] if xi is not None else None
    y_metric = c.objectives[yi]
    vs = f"{y_metric} vs {x_metric or 'trial'}"
    units = ", ".join(f"{m} in {METRICS[m].unit}" for m in (y_metric, x_metric)
                      if m is not None and METRICS[m].unit)
    title = (f"{vs}{f' ({units})' if units else ''}: {c.space} on {c.hardware}, "
             f"{c.strategy}, {summary.done} trials, {budgets_text(dict(c.budgets))}; "
             f"front {len(summary.front)}, hypervolume {summary.hypervolume:.4f}")
    budget = c.budgets.get(x_metric) if x_metric is not None else None
    return Plot(title, axis_label(x_metric) if x_metric else "trial", axis_label(y_metric),
                log_x(x_metric, x), series, budget,
                budgets_text({x_metric: budget}) if budget and x_metric else "budget")


def plot_front(summary: RunSummary, path: str | Path) -> Path:
    """The front highlighted over the dominated (grey) and infeasible (light) trials.

    ``.png`` is drawn with matplotlib, ``.html`` with plotly (interactive: hover says which
    trial a point is and its score, latency, FLOPs and params). With more than two
    objectives, the first two are plotted and the front is the full multi-objective front.
    """
    return draw(front_plot(summary), path)


def draw(plot: Plot, path: str | Path) -> Path:
    """Write ``plot`` as ``.png`` (matplotlib) or ``.html`` (plotly), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html"):
        raise InputError(f"--plot: {str(path)!r} must end in .png or .html")
    atomic_write_bytes(path, _png(plot) if suffix == ".png" else _html(plot))
    return path


def _png(plot: Plot) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    for s in plot.series:
        if s.kind == "front":
            ax.plot(s.x, s.y, "-o", c=s.color, ms=5, lw=1.2, label=s.label)
        elif s.kind == "faint":
            ax.scatter(s.x, s.y, s=6, c=s.color, marker="x", label=s.label)
        else:
            ax.scatter(s.x, s.y, s=8, c=s.color, alpha=0.6, label=s.label)
    if plot.x_budget is not None:
        ax.axvline(plot.x_budget, ls="--", c="#1f77b4", lw=1, label=plot.budget_label)
    if plot.log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel(plot.x_label)
    ax.set_ylabel(plot.y_label)
    ax.set_title("\n".join(_wrap(plot.title, 95)), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _html(plot: Plot) -> bytes:
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in plot.series:
        marker = {"front": dict(color=s.color, size=8),
                  "points": dict(color=s.color, size=5),
                  "faint": dict(color=s.color, size=4, symbol="x")}[s.kind]
        fig.add_trace(go.Scatter(x=s.x, y=s.y, name=s.label, marker=marker,
                                 mode="lines+markers" if s.kind == "front" else "markers",
                                 text=s.hover, hovertemplate="%{text}<extra></extra>"))
    if plot.x_budget is not None:
        fig.add_vline(x=plot.x_budget, line_dash="dash", line_color="#1f77b4",
                      annotation_text=plot.budget_label)
    fig.update_layout(title="<br>".join(_wrap(plot.title, 110)), template="plotly_white",
                      xaxis_title=plot.x_label, yaxis_title=plot.y_label)
    if plot.log_x:
        fig.update_xaxes(type="log")
    return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]
