"""``archdesign latency``: predicted (and optionally measured) latency of a network."""

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
from archdesign.cost import DTYPE_BYTES
from archdesign.hardware.profile import get_profile
from archdesign.hardware.trust import warn_if_unvalidated


@click.command("latency")
@spec_source_options
@click.option("--hardware", "hardware", required=True, help="Profile name or YAML path.")
@click.option("--model", "kind", type=click.Choice(["roofline", "table", "fitted"]),
              help="Latency model [default: the profile's].")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--dtype", type=click.Choice(sorted(DTYPE_BYTES)),
              help="Precision [default: the profile's].")
@click.option("--resolution", type=int, help="Override the input resolution.")
@click.option("--measure", is_flag=True,
              help="Also time the network on this machine, in the profile's runtime (only "
                   "for a profile measured here: `archdesign profile measure`).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(min=1),
              help="Threads to time with [default: the profile's, else 1].")
@click.option("--per-layer", is_flag=True, help="List every fused kernel.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def latency_command(spec_file: str | None, arch: str | None, space: str | None,
                    assignments: tuple[str, ...], hardware: str, kind: str | None, batch: int,
                    dtype: str | None, resolution: int | None, measure: bool, device: str,
                    threads: int | None, per_layer: bool, as_json: bool) -> None:
    """Predicted latency of SPEC_FILE, a zoo --arch, or a --space point on --hardware."""
    from archdesign.hardware.models import model_for

    spec = resolve_spec(spec_file, arch, space, assignments, resolution)
    profile = get_profile(hardware)
    warning = warn_if_unvalidated(profile)  # logged: the CLI prints it on stderr
    runtime = None
    if measure:
        from archdesign.build import check_fits
        from archdesign.hardware.runtime import require_this_machine

        check_fits(spec, batch, "--batch")  # bad input first, then the profile's machine
        runtime = require_this_machine(profile, device)  # before any work
    threads = threads or int(profile.machine.get("threads", "1"))
    model = model_for(profile, kind)
    dtype = dtype or profile.precision
    predicted = model.predict(spec, batch, dtype)
    kernels = model.predict_layers(spec, batch, dtype) if per_layer else []
    measured = None
    if measure:
        from archdesign.hardware.measure import measure_network

        measured = measure_network(spec, batch, device, threads, runtime=runtime)
    if as_json:
        data: dict[str, object] = {
            "name": spec.name, "hardware": profile.name, "model": model.kind, "batch": batch,
            "dtype": dtype, "predicted_ms": predicted, "validated": warning is None}
        if measured is not None:
            data.update(measured_ms=measured.median_ms, measured_spread=measured.spread,
                        measured_wall_ms=measured.wall_ms, measured_cpu_ms=measured.cpu_ms,
                        measured_passes_ms=list(measured.passes_ms), runtime=runtime,
                        device=device, threads=threads)
        if per_layer:
            data["kernels"] = [{"name": n, "predicted_ms": t} for n, t in kernels]
        print_json(data)
        return
    console = Console()
    if per_layer:
        total = sum(t for _, t in kernels) or 1.0
        print_table(console, "fused kernels (uncalibrated)",
                    [Column("kernel", kind="name"), Column("ms"), Column("share")],
                    [[name, f"{t:.4f}", f"{t / total:.1%}"] for name, t in kernels])
    console.print(f"{spec.name or 'architecture'} on [bold]{profile.name}[/] ({model.kind}, "
                  f"batch {batch}, {dtype}): predicted [bold]{predicted:.3f} ms[/]")
    if measured is not None:
        error = (predicted - measured.median_ms) / measured.median_ms
        clock = "thread CPU time" if measured.cpu_ms is not None else "wall time"
        console.print(f"measured on this machine ({runtime}, {device}, {threads} thread(s), "
                      f"{clock}): [bold]{measured.median_ms:.3f} ms[/] (wall "
                      f"{measured.wall_ms:.3f} ms; passes {measured.passes_ms[0]:.3f} / "
                      f"{measured.passes_ms[1]:.3f} ms); prediction error {error:+.1%}")
