"""``archdesign pareto``: a run's Pareto front as a table or JSON, and a plot."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from archdesign.cli.common import print_json
from archdesign.files import check_output
from archdesign.hardware.trust import check_hardware
from archdesign.report import RunSummary, load_trials, plot_front, read_measured, summarize
from archdesign.runs import RunDir
from archdesign.search import SearchConfig, format_metric, frame_for

_COLUMNS = ("score", "latency", "flops", "params", "memory", "rho")


def load_summary(run_dir: str) -> RunSummary:
    """The summary of the run in ``run_dir`` (an InputError if it is not a run)."""
    run = RunDir(run_dir).require()
    data = run.read_config()
    config = SearchConfig.from_dict(data.get("search") or {}, str(run.config_path))
    frame = frame_for(run.with_sources(config, always=True))
    return summarize(load_trials(run, config), config, frame, read_measured(run))


def print_front(summary: RunSummary, console: Console, limit: int | None = None) -> None:
    c = summary.config
    title = (f"Pareto front: {c.space} on {c.hardware}, {summary.done} trials "
             f"({summary.feasible} feasible), hypervolume {summary.hypervolume:.4f}")
    table = Table(title=title)
    measured = any(e.measured_latency_ms is not None for e in summary.front)
    for col in ("rank", "trial", *_COLUMNS, *(["measured"] if measured else []), "binds"):
        table.add_column(col, justify="left" if col == "binds" else "right")
    shown = summary.front if limit is None else summary.front[:limit]
    for e in shown:
        # runs made before rho was a metric have no rho in their trials
        row = [str(e.rank), str(e.trial), *[format_metric(m, e.metrics[m])
                                            if m in e.metrics else "" for m in _COLUMNS]]
        if measured:
            row.append("" if e.measured_latency_ms is None
                       else format_metric("latency", e.measured_latency_ms))
        row.append(", ".join(e.binding))
        table.add_row(*row)
    console.print(table)
    if limit is not None and len(summary.front) > limit:
        console.print(f"... and {len(summary.front) - limit} more (archdesign pareto RUN)")
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
    summary = load_summary(run_dir)
    check_hardware(summary.config.hardware)
    if plot:
        plot_front(summary, plot)
    if as_json:
        print_json(summary.to_dict())
        return
    print_front(summary, Console())
    if plot:
        Console(stderr=True).print(f"plot written to {plot}")
