"""``archdesign hardware``: list the hardware profiles, show one."""

from __future__ import annotations

import click
from rich.console import Console

from archdesign.cli.common import Column, print_json, print_table
from archdesign.hardware.profile import HardwareProfile, get_profile, list_profiles
from archdesign.hardware.trust import validation_summary


def _validated(profile: HardwareProfile) -> str:
    summary = validation_summary(profile)
    if summary is None:
        return "never checked (datasheet)"
    # the source is in `hardware show NAME` and --json; the table says how well and on what
    return f"{summary['within_10pct']:.0%} within ±10% on {summary['n']} {summary['level']}"


def _si(x: float, unit: str) -> str:
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= factor:
            return f"{x / factor:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


@click.group("hardware", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def hardware_command(ctx: click.Context, as_json: bool) -> None:
    """List hardware profiles (built-in and measured)."""
    if ctx.invoked_subcommand is not None:
        return
    profiles = [get_profile(name) for name in list_profiles()]
    if as_json:
        print_json({"profiles": [{"name": p.name, "device": p.device, "kind": p.kind,
                                  "precision": p.precision, "runtime": p.runtime,
                                  "machine": p.machine or None,
                                  "model": p.model.kind if p.model else "roofline",
                                  "validation": validation_summary(p),
                                  "path": str(p.path)} for p in profiles]})
        return
    rows = [[p.name, p.device, p.kind, p.precision, p.runtime or "- (datasheet)",
             _si(p.peak("conv", p.precision), "FLOP/s"),
             _si(p.memory_bandwidth, "B/s"), p.model.kind if p.model else "roofline",
             _validated(p)] for p in profiles]
    print_table(Console(), "hardware profiles",
                [Column("name", kind="name"), Column("device", kind="text", drop=6),
                 Column("kind", kind="name", drop=8),
                 Column("precision", kind="name", drop=3),
                 Column("runtime", kind="name", drop=2),
                 Column("peak", drop=1), Column("bandwidth", drop=5),
                 Column("model", kind="name", drop=7),
                 Column("validated", kind="text", min_width=20)],
                rows, note="archdesign hardware show NAME shows a profile")


@hardware_command.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show_command(name: str, as_json: bool) -> None:
    """Show profile NAME (a registry name or a YAML path)."""
    profile = get_profile(name)
    data = profile.to_dict()
    data["path"] = str(profile.path)
    if as_json:
        print_json(data)
        return
    console = Console()
    console.print(f"[bold]{profile.name}[/]: {profile.device} ({profile.kind}, "
                  f"{profile.precision}, runtime {profile.runtime or 'none: a datasheet'})  "
                  f"[dim]{profile.path}[/]")
    if profile.machine:
        console.print("measured on: " + ", ".join(f"{k} {v}" for k, v in
                                                  profile.machine.items()), markup=False)
    dtypes = sorted({d for t in profile.peak_flops.values() for d in t})
    print_table(console, "peak throughput (FLOP/s, 2 per MAC)",
                [Column("op class", kind="name"), *[Column(d) for d in dtypes]],
                [[cls, *[_si(t[d], "") if d in t else "-" for d in dtypes]]
                 for cls, t in profile.peak_flops.items()])
    print_table(console, "efficiency (fraction of peak)",
                [Column("op class", kind="name"), Column("compute"), Column("memory")],
                [[cls, f"{e.compute:g}", f"{e.memory:g}"]
                 for cls, e in profile.efficiency.items()])
    console.print(f"memory bandwidth {_si(profile.memory_bandwidth, 'B/s')}; kernel overhead "
                  f"{profile.kernel_overhead_us:g} µs; fusion: conv+norm+act "
                  f"{profile.fusion.conv_norm_act}, residual add {profile.fusion.residual_add}")
    if profile.derived:
        console.print("[bold]derived / unverified values[/]")
        for key, note in profile.derived.items():
            console.print(f"  {key}: {note}", markup=False)
    if profile.model is not None:
        on = f" on {profile.model.measurements}" if profile.model.measurements else ""
        console.print(f"model: {profile.model.kind}{on}", markup=False)
    console.print(f"validated: {_validated(profile)}", markup=False)
    if profile.validation:
        console.print("validation:")
        console.print_json(data=data["validation"])
