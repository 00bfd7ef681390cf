"""``archdesign build``: any spec as an ONNX file (checked) and/or a TorchScript file."""

from __future__ import annotations

import click
from rich.console import Console

from archdesign.cli.common import resolve_spec, spec_source_options
from archdesign.errors import InputError
from archdesign.export import SUFFIXES, export_onnx, export_torchscript
from archdesign.files import check_output


@click.command("build")
@spec_source_options
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False),
              help="Write ONNX here (checked against PyTorch with ONNX Runtime).")
@click.option("--torchscript", "ts_path", type=click.Path(dir_okay=False),
              help="Write a TorchScript file here.")
def build_command(spec_file: str | None, arch: str | None, space: str | None,
                  assignments: tuple[str, ...], onnx_path: str | None,
                  ts_path: str | None) -> None:
    """Build SPEC_FILE (or --arch / --space) as a PyTorch network and export it."""
    if not onnx_path and not ts_path:
        raise InputError("give --onnx PATH and/or --torchscript PATH")
    if onnx_path:
        check_output("--onnx", onnx_path, SUFFIXES["onnx"])
    if ts_path:
        check_output("--torchscript", ts_path, SUFFIXES["torch"])
    spec = resolve_spec(spec_file, arch, space, assignments)
    console = Console(stderr=True)
    if onnx_path:
        check = export_onnx(spec, onnx_path)
        assert check is not None
        console.print(f"{onnx_path}: ONNX Runtime matches PyTorch (max |diff| "
                      f"{check.max_abs_diff:.3g}, relative {check.relative_diff:.3g})")
    if ts_path:
        export_torchscript(spec, ts_path)
        console.print(f"{ts_path}: TorchScript (load with torch.jit.load)")
