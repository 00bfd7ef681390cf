"""``archdesign compare``: several runs' fronts on one hypervolume frame (table, plot)."""

from __future__ import annotations

import click
from rich.console import Console

from archdesign.cli.common import Column, print_json, print_table
from archdesign.compare import Comparison, compare_runs, plot_comparison
from archdesign.files import check_output
from archdesign.metrics import METRICS, format_metric


def frame_text(c: Comparison) -> str:
    """``score from 9100 (ideal) to 1200 (reference), latency from ...``, unminimized."""
    parts = []
    for name, lo, hi in zip(c.objectives, c.frame.ideal, c.frame.reference, strict=True):
        sign = -1.0 if METRICS[name].maximize else 1.0
        parts.append(f"{name} from {format_metric(name, sign * lo)} (ideal) to "
                     f"{format_metric(name, sign * hi)} (reference)")
    return "; ".join(parts)


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Overlay the fronts: FILE.png (matplotlib) or FILE.html (plotly).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def compare_command(runs: tuple[str, ...], plot: str | None, as_json: bool) -> None:
    """Compare the fronts of RUNS (two or more run directories of the same objectives) on
    one hypervolume frame, the union of their own frames."""
    if plot:
        check_output("--plot", plot, (".png", ".html"))
    comparison = compare_runs(runs)
    if plot:
        plot_comparison(comparison, plot)
    if as_json:
        print_json(comparison.to_dict())
        return
    console = Console()
    columns = [Column("run", kind="name"), Column("space", kind="name", drop=2),
               Column("hardware", kind="name", drop=2),
               Column("strategy", kind="name", drop=3), Column("trials", drop=4),
               Column("front"), Column("hv own", drop=1), Column("hv common"),
               Column("on joint front")]
    rows = [[name, s.config.space, s.config.hardware, s.config.strategy, str(s.done),
             str(len(s.front)), f"{s.hypervolume:.4f}", f"{hv:.4f}", str(joint)]
            for name, s, hv, joint in zip(comparison.names, comparison.summaries,
                                          comparison.hypervolumes, comparison.joint,
                                          strict=True)]
    print_table(console, f"{len(runs)} runs, objectives {', '.join(comparison.objectives)}",
                columns, rows)
    console.print(f"hv common: hypervolume in the common frame (the union of the runs' own "
                  f"frames): {frame_text(comparison)}. hv own: in each run's own frame. On "
                  f"joint front: the run's front networks no other run's front dominates.",
                  markup=False, highlight=False)
    if plot:
        Console(stderr=True).print(f"plot written to {plot}", markup=False)
