"""``archdesign export``: one design of a run as a spec file, ONNX, TorchScript or PyTorch
source."""

from __future__ import annotations

import click
from rich.console import Console

from archdesign.export import FORMATS, SUFFIXES, export_from_run, parse_conditions

_SUFFIX_HELP = "; ".join(f"{', '.join(xs)}: {fmt}" for fmt, xs in SUFFIXES.items())


@click.command("export")
@click.argument("run_dir", type=click.Path())
@click.option("--trial", type=int, help="The trial number to export.")
@click.option("--best-under", metavar="METRIC=AMOUNT[,...]",
              help="The best-scoring feasible trial under these limits, e.g. latency=2ms.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="json/yaml: spec with metrics and provenance; onnx (checked with ONNX "
                   "Runtime); torch: a TorchScript file; py: plain PyTorch source (checked "
                   f"against archdesign's build) [default: from --out: {_SUFFIX_HELP}].")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output file.")
@click.option("--num-classes", type=click.IntRange(min=1),
              help="Export with this many classes instead of the design's.")
@click.option("--resolution", type=click.IntRange(min=1),
              help="Export for this input resolution instead of the design's.")
def export_command(run_dir: str, trial: int | None, best_under: str | None, fmt: str | None,
                   out: str, num_classes: int | None, resolution: int | None) -> None:
    """Export a design of RUN_DIR (--trial ID or --best-under latency=2ms)."""
    conditions = parse_conditions(best_under) if best_under is not None else None
    result = export_from_run(run_dir, fmt, out, trial, conditions, num_classes, resolution)
    console = Console(stderr=True)
    console.print(f"trial {result.trial} ({result.spec.name or 'unnamed'}, "
                  f"{result.spec.resolution}px, {result.spec.head.num_classes} classes) -> "
                  f"{result.path} ({result.fmt})", markup=False, highlight=False)
    if result.onnx_check is not None:
        console.print(f"ONNX Runtime matches PyTorch: max |diff| "
                      f"{result.onnx_check.max_abs_diff:.3g} (relative "
                      f"{result.onnx_check.relative_diff:.3g})")
