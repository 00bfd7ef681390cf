"""``archdesign cost``: exact FLOPs, params, activations and memory of an architecture."""

from __future__ import annotations

import click
from rich.console import Console

from archdesign.cli.common import (
    Column,
    print_json,
    print_table,
    resolve_spec,
    spec_source_options,
)
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
    parts = [*stages, ("total", total)]
    print_table(console, title,
                [Column("part", kind="name"), Column("FLOPs (MAC)"), Column("params"),
                 Column("activations", drop=2), Column("peak act. mem", drop=1),
                 Column("bytes moved", drop=3)],
                [[name, _si(c.flops), _si(c.params), _si(c.activations),
                  _bytes(c.peak_activation_bytes), _bytes(c.bytes_moved)]
                 for name, c in parts], bold=[len(parts) - 1], note="--json has them all")
    if per_layer:
        print_table(console, "layers",
                    [Column("layer", kind="name"), Column("op", kind="name"),
                     Column("shape", kind="name", drop=1), Column("FLOPs"), Column("params"),
                     Column("acts", drop=2)],
                    [[lc.name, lc.op, lc.shape, _si(lc.flops), _si(lc.params),
                      _si(lc.activations)] for lc in cost_by_layer(spec, batch, dtype)],
                    note="--json has them all")


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
