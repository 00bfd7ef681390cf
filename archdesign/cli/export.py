"""``archdesign export``: one design of a run as a spec file, ONNX or TorchScript."""

from __future__ import annotations

import click
from rich.console import Console

from archdesign.export import FORMATS, export_from_run, parse_conditions


@click.command("export")
@click.argument("run_dir", type=click.Path())
@click.option("--trial", type=int, help="The trial number to export.")
@click.option("--best-under", metavar="METRIC=AMOUNT[,...]",
              help="The best-scoring feasible trial under these limits, e.g. latency=2ms.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="json/yaml: spec with metrics and provenance; onnx (checked with ONNX "
                   "Runtime); torch: a TorchScript file.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output file.")
def export_command(run_dir: str, trial: int | None, best_under: str | None, fmt: str,
                   out: str) -> None:
    """Export a design of RUN_DIR (--trial ID or --best-under latency=2ms)."""
    conditions = parse_conditions(best_under) if best_under is not None else None
    result = export_from_run(run_dir, fmt, out, trial, conditions)
    console = Console(stderr=True)
    console.print(f"trial {result.trial} ({result.spec.name}) -> {result.path} ({fmt})")
    if result.onnx_check is not None:
        console.print(f"ONNX Runtime matches PyTorch: max |diff| "
                      f"{result.onnx_check.max_abs_diff:.3g} (relative "
                      f"{result.onnx_check.relative_diff:.3g})")
