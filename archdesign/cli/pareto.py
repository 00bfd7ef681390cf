"""``archdesign pareto``: a run's Pareto front as a table or JSON, and a plot."""

from __future__ import annotations

import click
from rich.console import Console

from archdesign.cli.common import Column, print_json, print_table
from archdesign.files import check_output
from archdesign.hardware.trust import check_hardware
from archdesign.metrics import format_metric, metric_texts
from archdesign.report import RunSummary, load_run, plot_front

#: The metric columns of a front table, and the order they are left out to fit.
_COLUMNS = ("score", "latency", "flops", "params", "memory", "rho")
_DROP = {"score": 2, "latency": 2, "flops": 2, "params": 3, "memory": 5, "rho": 4}


def print_front(summary: RunSummary, console: Console, limit: int | None = None) -> None:
    c = summary.config
    title = (f"Pareto front: {c.space} on {c.hardware}, {summary.done} trials "
             f"({summary.feasible} feasible), hypervolume {summary.hypervolume:.4f}")
    shown = summary.front if limit is None else summary.front[:limit]
    measured = any(e.measured_latency_ms is not None for e in shown)
    # runs made before rho was a metric have no rho in their trials
    metrics = [m for m in _COLUMNS if any(m in e.metrics for e in shown)]
    columns = [Column("rank"), Column("trial"),
               *[Column(m, drop=0 if m in c.objectives else 1 if m in c.budgets else _DROP[m])
                 for m in metrics],
               *([Column("measured", drop=1)] if measured else []),
               Column("binds", kind="text", drop=6)]
    cells = {m: metric_texts(m, [e.metrics[m] for e in shown]) for m in metrics}
    rows = []
    for i, e in enumerate(shown):
        row = [str(e.rank), str(e.trial), *[cells[m][i] for m in metrics]]
        if measured:
            row.append("" if e.measured_latency_ms is None
                       else format_metric("latency", e.measured_latency_ms))
        row.append(", ".join(e.binding))
        rows.append(row)
    print_table(console, title, columns, rows)
    if limit is not None and len(summary.front) > limit:
        console.print(f"and {len(summary.front) - limit} more (archdesign pareto RUN)")
    if not summary.front:
        console.print("[yellow]no feasible design yet[/]: loosen the budgets or run more "
                      "trials (--resume --trials N)")


@click.command("pareto")
@click.argument("run_dir", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the front as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Write a plot: FILE.png (matplotlib) or FILE.html (interactive plotly).")
def pareto_command(run_dir: str, as_json: bool, plot: str | None) -> None:
    """The Pareto front of RUN_DIR: rank, trial, metrics, binding budgets, hypervolume."""
    if plot:
        check_output("--plot", plot, (".png", ".html"))
    summary = load_run(run_dir)
    check_hardware(summary.config.hardware)
    if plot:
        plot_front(summary, plot)
    if as_json:
        print_json(summary.to_dict())
        return
    print_front(summary, Console())
    if plot:
        Console(stderr=True).print(f"plot written to {plot}")
