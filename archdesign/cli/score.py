"""``archdesign score``: a training-free objective of any architecture."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from archdesign.cli.common import print_json, resolve_spec, spec_source_options


@click.command("score")
@spec_source_options
@click.option("--objective", default="deepmad", show_default=True,
              help="deepmad or zen (see archdesign.objectives).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def score_command(spec_file: str | None, arch: str | None, space: str | None,
                  assignments: tuple[str, ...], objective: str, as_json: bool) -> None:
    """Score SPEC_FILE, a zoo --arch, or a --space point with a training-free objective."""
    from archdesign.objectives import effectiveness, get_objective

    spec = resolve_spec(spec_file, arch, space, assignments)
    scorer = get_objective(objective)
    details = scorer.details(spec)
    details.setdefault("rho", effectiveness(spec))
    if as_json:
        print_json({"objective": scorer.name, "name": spec.name, **details,
                    "settings": scorer.settings(), "spec": spec.to_dict()})
        return
    console = Console()
    console.print(f"{spec.name or 'architecture'}: {scorer.name} score "
                  f"[bold]{details['score']:.4f}[/bold]   ρ {details['rho']:.4f}")
    if "groups" in details:
        table = Table(title="DeepMAD groups (cut at each downsampling block)")
        for col in ("group", "channels", "resolution", "entropy S", "convs", "ρ", "α",
                    "α·H"):
            table.add_column(col, justify="right")
        for i, g in enumerate(details["groups"]):
            table.add_row(str(i), str(g["channels"]), str(g["resolution"]),
                          f"{g['entropy']:.3f}", str(g["convs"]), f"{g['rho']:.4f}",
                          f"{g['alpha']:g}", f"{g['weighted']:.2f}")
        console.print(table)
        console.print(f"depth penalty {details['depth_penalty']:.3f}")
