"""``archdesign spaces``: list search spaces and zoo architectures; show one space."""

from __future__ import annotations

import math

import click
from rich.console import Console
from rich.table import Table

from archdesign.cost import cost
from archdesign.spaces import get_space, list_spaces
from archdesign.zoo import get_arch, list_archs


def _size(size: float) -> str:
    return "continuous" if math.isinf(size) else f"{size:.3g}"


@click.group("spaces", invoke_without_command=True)
@click.pass_context
def spaces_command(ctx: click.Context) -> None:
    """List search spaces (with sizes) and zoo architectures."""
    if ctx.invoked_subcommand is not None:
        return
    console = Console()
    table = Table(title="search spaces")
    for col in ("name", "parameters", "size", "default FLOPs"):
        table.add_column(col, no_wrap=True)
    table.add_column("description", no_wrap=True, overflow="ellipsis", max_width=60)
    for name in list_spaces():
        space = get_space(name)
        table.add_row(name, str(len(space.parameters)), _size(space.size),
                      f"{cost(space.spec()).flops / 1e9:.3f} G",
                      " ".join(space.description.split()))
    console.print(table)
    zoo = Table(title="zoo architectures (--arch NAME or NAME@RES)")
    for col in ("name", "FLOPs", "params"):
        zoo.add_column(col)
    for name in list_archs():
        c = cost(get_arch(name))
        zoo.add_row(name, f"{c.flops / 1e9:.3f} G", f"{c.params / 1e6:.2f} M")
    console.print(zoo)


@spaces_command.command("show")
@click.argument("name")
def show_command(name: str) -> None:
    """Parameters, ranges and defaults of space NAME."""
    space = get_space(name)
    console = Console()
    console.print(f"[bold]{space.name}[/] ({space.source})")
    console.print(" ".join(space.description.split()))
    table = Table()
    for col in ("parameter", "type", "values", "count", "default"):
        table.add_column(col)
    for p in space.parameters:
        table.add_row(p.name, p.kind, p.describe(), _size(p.count), str(p.default))
    console.print(table)
    console.print(f"size: {_size(space.size)}; default FLOPs "
                  f"{cost(space.spec()).flops / 1e9:.3f} G")
