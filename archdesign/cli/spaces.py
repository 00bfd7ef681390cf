"""``archdesign spaces``: list search spaces and zoo architectures; show one space."""

from __future__ import annotations

import math

import click
from rich.console import Console

from archdesign.cli.common import Column, print_table
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
    rows = []
    for name in list_spaces():
        space = get_space(name)
        rows.append([name, str(len(space.parameters)), _size(space.size),
                     f"{cost(space.spec()).flops / 1e9:.3f} G",
                     " ".join(space.description.split())])
    print_table(console, "search spaces",
                [Column("name", kind="name"), Column("parameters"), Column("size"),
                 Column("default FLOPs"),
                 Column("description", kind="text", drop=1, min_width=40)],
                rows, note="archdesign spaces show NAME describes a space")
    zoo = []
    for name in list_archs():
        c = cost(get_arch(name))
        zoo.append([name, f"{c.flops / 1e9:.3f} G", f"{c.params / 1e6:.2f} M"])
    print_table(console, "zoo architectures (--arch NAME or NAME@RES)",
                [Column("name", kind="name"), Column("FLOPs"), Column("params")], zoo)


@spaces_command.command("show")
@click.argument("name")
def show_command(name: str) -> None:
    """Parameters, ranges and defaults of space NAME."""
    space = get_space(name)
    console = Console()
    console.print(f"[bold]{space.name}[/] ({space.source})")
    console.print(" ".join(space.description.split()))
    print_table(console, None,
                [Column("parameter", kind="name"), Column("type", kind="name"),
                 Column("values", kind="text"), Column("count"),
                 Column("default", kind="name")],
                [[p.name, p.kind, p.describe(), _size(p.count), str(p.default)]
                 for p in space.parameters])
    console.print(f"size: {_size(space.size)}; default FLOPs "
                  f"{cost(space.spec()).flops / 1e9:.3f} G")
