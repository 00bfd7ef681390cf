"""``archdesign cost``: exact FLOPs, params, activations and memory of an architecture."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from archdesign.cli.common import print_json, resolve_spec, spec_source_options
from archdesign.cost import DTYPE_BYTES, cost, cost_by_layer, cost_by_stage
from archdesign.spec import COUNTING_CONVENTIONS


@click.command("cost")
@spec_source_options
@click.option("--resolution", type=int, help="Override the input resolution.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--dtype", type=click.Choice(sorted(DTYPE_BYTES)), default="float32",
              show_default=True)
@click.option("--per-layer", is_flag=True, help="Also list every layer.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def cost_command(spec_file: str | None, arch: str | None, space: str | None,
                 assignments: tuple[str, ...], resolution: int | None, batch: int, dtype: str,
                 per_layer: bool, as_json: bool) -> None:
    """Exact costs of SPEC_FILE, a zoo --arch, or a --space point."""
    spec = resolve_spec(spec_file, arch, space, assignments, resolution)
    total = cost(spec, batch, dtype)
    stages = cost_by_stage(spec, batch, dtype)
    if as_json:
        data: dict[str, object] = {
                **total.to_dict(), "name": spec.name, "resolution": spec.resolution,
                "stages": {name: c.to_dict() for name, c in stages},
                "conventions": COUNTING_CONVENTIONS, "spec": spec.to_dict()}
        if per_layer:
            data["layers"] = [vars_(lc) for lc in cost_by_layer(spec, batch, dtype)]
        print_json(data)
        return
    console = Console()
    title = f"{spec.name or 'architecture'} @ {spec.resolution}px, batch {batch}, {dtype}"
    table = Table(title=title)
    for col in ("part", "FLOPs (MAC)", "params", "activations", "peak act. mem", "bytes moved"):
        table.add_column(col, justify="right" if col != "part" else "left")
    for name, c in [*stages, ("total", total)]:
        table.add_row(name, _si(c.flops), _si(c.params), _si(c.activations),
                      _bytes(c.peak_activation_bytes), _bytes(c.bytes_moved),
                      style="bold" if name == "total" else None)
    console.print(table)
    if per_layer:
        layers_table = Table(title="layers")
        for col in ("layer", "op", "shape", "FLOPs", "params", "acts"):
            layers_table.add_column(col)
        for lc in cost_by_layer(spec, batch, dtype):
            layers_table.add_row(lc.name, lc.op, lc.shape, _si(lc.flops), _si(lc.params),
                                 _si(lc.activations))
        console.print(layers_table)


def vars_(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f}{unit}"
    return str(n)


def _bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"
