"""``archdesign runs``: the runs in a directory, one line each (read only)."""

from __future__ import annotations

import click
from rich.console import Console

from archdesign.cli.common import Column, print_json, print_table
from archdesign.runs import list_runs


@click.command("runs")
@click.argument("directory", default="runs", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def runs_command(directory: str, as_json: bool) -> None:
    """The search runs at or below DIRECTORY [default: runs]: space, hardware, strategy,
    trials, feasible, front size, hypervolume (in each run's own frame), date."""
    listings = list_runs(directory)
    if as_json:
        print_json({"directory": directory, "runs": [r.to_dict() for r in listings]})
        return
    console = Console()
    if not listings:
        console.print(f"no runs in {directory} (start one with archdesign search)",
                      markup=False)
        return
    columns = [Column("run", kind="name"), Column("space", kind="name"),
               Column("hardware", kind="name"), Column("strategy", kind="name", drop=2),
               Column("trials"), Column("feasible", drop=1), Column("front"),
               Column("hv"), Column("started (UTC)", drop=3)]
    rows = []
    for r in listings:
        done = "-" if r.trials is None else str(r.trials)
        rows.append([str(r.path.relative_to(directory)), r.space or "-", r.hardware or "-",
                     r.strategy or "-",
                     done if r.target in (None, r.trials) else f"{done}/{r.target}",
                     "-" if r.feasible is None else str(r.feasible),
                     "-" if r.front is None else str(r.front),
                     "-" if r.hypervolume is None else f"{r.hypervolume:.4f}",
                     (r.started or "-")[:16].replace("T", " ")])
    print_table(console, f"{len(listings)} runs in {directory} (hv: hypervolume in the "
                         f"run's own frame; archdesign compare puts runs on one frame)",
                columns, rows)
    for r in listings:
        if r.problem:
            console.print(f"{r.path}: {r.problem}", markup=False, highlight=False)
