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

from archdesign.errors import InputError
from archdesign.files import atomic_write_bytes
from archdesign.metrics import METRICS, binding, feasible
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
    try:
        data = json.loads(path.read_text())
        return {int(k): v for k, v in data.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise RunError(f"{path}: unreadable measurements ({exc})") from None


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
    front_mask = np.zeros(len(complete), dtype=bool)
    front_mask[on_front] = True
    points = {"values": values, "feasible": feasible_mask, "front": front_mask,
              "numbers": np.array([t.number for t in complete], dtype=int)}
    hv = hypervolume(minimized[on_front], frame) if len(on_front) else 0.0
    return RunSummary(config, frame, len(trials), int(feasible_mask.sum()), failed, hv, front,
                      points)


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


def _axes(summary: RunSummary) -> tuple[int, int | None]:
    """Columns of the objective values on the y and x axes (x: None plots by trial)."""
    objectives = list(summary.config.objectives)
    if len(objectives) == 1:
        return 0, None
    return 0, 1


def _label(metric: str) -> str:
    unit = METRICS[metric].unit
    direction = "higher is better" if METRICS[metric].maximize else "lower is better"
    return f"{metric}{f' ({unit})' if unit else ''}, {direction}"


def plot_front(summary: RunSummary, path: str | Path) -> Path:
    """The front highlighted over the dominated (grey) and infeasible (light) trials.

    ``.png`` is drawn with matplotlib, ``.html`` with plotly (interactive: hover shows the
    trial number and every objective). With more than two objectives, the first two are
    plotted and the front is the full multi-objective front.
    """
    path = Path(path)
    if path.suffix.lower() not in (".png", ".html"):
        raise InputError(f"--plot: {str(path)!r} must end in .png or .html")
    if path.suffix.lower() == ".png":
        _plot_png(summary, path)
    else:
        _plot_html(summary, path)
    return path


def _series(summary: RunSummary) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    p = summary.points
    yi, xi = _axes(summary)
    values, feasible, front = p["values"], p["feasible"], p["front"]
    x_all = values[:, xi] if xi is not None else p["numbers"].astype(float)
    y_all = values[:, yi]
    out = {}
    for name, mask in (("infeasible", ~feasible), ("dominated", feasible & ~front),
                       ("front", front)):
        idx = np.flatnonzero(mask)
        if name == "front" and len(idx):
            idx = idx[np.argsort(x_all[idx], kind="stable")]
        out[name] = (x_all[idx], y_all[idx], p["numbers"][idx])
    return out


def _title(summary: RunSummary) -> str:
    c = summary.config
    budgets = ", ".join(f"{k} <= {v:g}" for k, v in c.budgets.items()) or "no budgets"
    return (f"{c.space} on {c.hardware} ({c.strategy}, {summary.done} trials, {budgets}); "
            f"hypervolume {summary.hypervolume:.4f}")


def _plot_png(summary: RunSummary, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    series = _series(summary)
    yi, xi = _axes(summary)
    objectives = summary.config.objectives
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    x, y, _ = series["infeasible"]
    ax.scatter(x, y, s=6, c="#dddddd", marker="x", label=f"over budget ({len(x)})")
    x, y, _ = series["dominated"]
    ax.scatter(x, y, s=8, c="#999999", alpha=0.6, label=f"dominated ({len(x)})")
    x, y, _ = series["front"]
    ax.plot(x, y, "-o", c="#d62728", ms=5, lw=1.2, label=f"Pareto front ({len(x)})")
    if xi is not None:
        budget = summary.config.budgets.get(objectives[xi])
        if budget is not None:
            ax.axvline(budget, ls="--", c="#1f77b4", lw=1, label=f"{objectives[xi]} budget")
        ax.set_xlabel(_label(objectives[xi]))
        if objectives[xi] not in ("score",) and len(summary.points["values"]) and \
                np.nanmin(summary.points["values"][:, xi]) > 0:
            ax.set_xscale("log")
            from matplotlib.ticker import FormatStrFormatter

            ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    else:
        ax.set_xlabel("trial")
    ax.set_ylabel(_label(objectives[yi]))
    ax.set_title(_title(summary), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _plot_html(summary: RunSummary, path: Path) -> None:
    import plotly.graph_objects as go

    series = _series(summary)
    yi, xi = _axes(summary)
    objectives = summary.config.objectives
    fig = go.Figure()
    styles = {"infeasible": dict(color="#dddddd", size=4, symbol="x"),
              "dominated": dict(color="#999999", size=5),
              "front": dict(color="#d62728", size=8)}
    for name, (x, y, numbers) in series.items():
        fig.add_trace(go.Scatter(
            x=x, y=y, mode="lines+markers" if name == "front" else "markers", name=name,
            marker=styles[name], text=[f"trial {n}" for n in numbers],
            hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>"))
    fig.update_layout(title=_title(summary), template="plotly_white",
                      xaxis_title=_label(objectives[xi]) if xi is not None else "trial",
                      yaxis_title=_label(objectives[yi]))
    buffer = fig.to_html(include_plotlyjs=True, full_html=True)
    atomic_write_bytes(path, buffer.encode("utf-8"))

