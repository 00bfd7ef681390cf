"""Helpers shared by CLI commands: resolving which architecture a command is about, and
printing tables that fit the terminal."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from archdesign.errors import InputError
from archdesign.spec import ArchSpec, load_spec


class FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (``FloatRange`` lets nan through)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def parse_assignments(items: tuple[str, ...]) -> dict[str, str]:
    """``("a=1", "b=x")`` -> ``{"a": "1", "b": "x"}``; a bad item is an InputError."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def resolve_spec(spec_file: str | None, arch: str | None, space: str | None,
                 assignments: tuple[str, ...], resolution: int | None = None) -> ArchSpec:
    """The spec named by exactly one of a file, ``--arch`` or ``--space`` (+ ``--set``)."""
    given = [x for x in (spec_file, arch, space) if x]
    if len(given) != 1:
        raise InputError("give exactly one of SPEC_FILE, --arch NAME or --space NAME")
    if assignments and not space:
        raise InputError("--set applies to --space only")
    if spec_file:
        spec = load_spec(spec_file)
    elif arch:
        from archdesign.zoo import get_arch

        spec = get_arch(arch)
    else:
        from archdesign.spaces import get_space

        assert space is not None
        spec = get_space(space).spec(parse_assignments(assignments))
    if resolution is not None:
        try:
            spec = ArchSpec.from_dict({**spec.to_dict(), "resolution": resolution},
                                      "--resolution")
        except InputError as exc:
            raise InputError(str(exc)) from None
    return spec


def spec_source_options(func: Any) -> Any:
    """SPEC_FILE | --arch NAME | --space NAME --set k=v ... options."""
    func = click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                        help="Set a space parameter (with --space; repeatable).")(func)
    func = click.option("--space", help="Search space name; its defaults with --set.")(func)
    func = click.option("--arch", help="Zoo architecture name (see `archdesign spaces`); "
                        "NAME@RES for another input resolution.")(func)
    return click.argument("spec_file", required=False,
                          type=click.Path(dir_okay=False))(func)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


# -- tables ---------------------------------------------------------------------------------

#: The narrowest a text column is squeezed to before columns are left out (it wraps).
TEXT_MIN_WIDTH = 12


@dataclass(frozen=True)
class Column:
    """A table column of ``kind``:

    - ``number``: right-aligned, always whole;
    - ``name``: left-aligned, whole unless the table cannot fit otherwise (then it wraps);
    - ``text``: left-aligned, wraps onto more lines, down to ``min_width`` characters.

    ``drop``: 0 for a column that is always shown; when the table does not fit the
    console, columns are left out highest ``drop`` first.
    """

    header: str
    kind: str = "number"
    drop: int = 0
    min_width: int = TEXT_MIN_WIDTH


def _table(columns: Sequence[Column], rows: Sequence[Sequence[str]], plain: bool,
           bold: frozenset[int], cap: bool, wrap_names: bool) -> Table:
    table = Table(box=None if plain else box.HEAVY_HEAD, show_edge=not plain,
                  pad_edge=not plain, header_style="" if plain else "bold")
    for j, c in enumerate(columns):
        whole = c.kind == "number" or (c.kind == "name" and not wrap_names)
        # a whole column is as wide as its longest cell (rich would measure its words)
        widest = max([cell_len(c.header), *(cell_len(r[j]) for r in rows)])
        table.add_column(c.header, justify="right" if c.kind == "number" else "left",
                         no_wrap=whole, overflow="fold", min_width=widest if whole else None,
                         max_width=max(c.min_width, *map(cell_len, c.header.split()))
                         if cap and not whole else None)
    for i, row in enumerate(rows):
        table.add_row(*row, style="bold" if i in bold and not plain else None)
    return table


def print_table(console: Console, title: str | None, columns: Sequence[Column],
                rows: Sequence[Sequence[str]], bold: Sequence[int] = (),
                note: str = "") -> list[str]:
    """Print a table that fits ``console``'s width without cutting a name or a number.

    Text cells wrap; if the table does not fit, columns are left out (highest ``drop``
    first) and a line says which; only then do names wrap. Printed to a terminal the
    table has borders; to a file or a pipe it is plain aligned text. Returns the headers
    left out.
    """
    plain = not console.is_terminal
    shown = list(range(len(columns)))
    dropped: list[str] = []
    wrap_names = False

    def build(cap: bool) -> Table:
        return _table([columns[i] for i in shown], [[r[i] for i in shown] for r in rows],
                      plain, frozenset(bold), cap, wrap_names)

    # measured as if the console were unbounded (rich clamps a measure to its width)
    unbounded = console.options.update_width(1 << 16)
    while console.measure(build(cap=True), options=unbounded).minimum > console.width:
        candidates = [i for i in shown if columns[i].drop > 0]
        if candidates:
            worst = max(candidates, key=lambda i: (columns[i].drop, i))
            shown.remove(worst)
            dropped.append(columns[worst].header)
        elif not wrap_names:
            wrap_names = True
        else:
            break  # numbers alone wider than the console: rich squeezes what is left
    if title:
        console.print(title, markup=False, highlight=False)
    console.print(build(cap=False))
    if dropped:
        console.print(f"(left out to fit {console.width} columns: {', '.join(dropped)}"
                      f"{'; ' + note if note else ''})", markup=False, highlight=False)
    return dropped
