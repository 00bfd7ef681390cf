"""``archdesign design``: the best network of a space within budgets, with a certified bound."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from archdesign.cli.common import Column, FiniteFloat, print_json, print_table
from archdesign.errors import InputError
from archdesign.files import check_output
from archdesign.metrics import parse_quantity

if TYPE_CHECKING:
    from archdesign.spec import StageSpec


def _budget(metric: str, text: str | None, option: str) -> float | None:
    return None if text is None else parse_quantity(metric, text, option)


@click.command("design")
@click.option("--space", required=True, help="Search space name or YAML file.")
@click.option("--flops", help="FLOP (MAC) budget, e.g. 1.82e9 or 1.82G.")
@click.option("--params", "params_", help="Parameter budget, e.g. 11.69e6 or 11.69M.")
@click.option("--activations", help="Activation-count budget.")
@click.option("--peak-memory", help="Peak activation memory budget in bytes (e.g. 8M).")
@click.option("--rho", type=FiniteFloat(min=0, min_open=True),
              help="Effectiveness bound ρ0 (0.3 for ResNet-sized).")
@click.option("--latency", help="Latency budget on --hardware, e.g. 2ms.")
@click.option("--hardware", help="Hardware profile for --latency.")
@click.option("--latency-model", type=click.Choice(["roofline", "table", "fitted"]),
              help="Latency model on --hardware (default: the profile's own). The roofline "
                   "model is in the MP's relaxation; measured models are checked on designs.")
@click.option("--resolution", type=int, help="Fix the input resolution.")
@click.option("--objective", default="deepmad", show_default=True,
              help="The MP bounds deepmad only; others (e.g. a fitted OBJ.yaml) are refused "
                   "with a pointer to archdesign search --score.")
@click.option("--tolerance", type=FiniteFloat(min=0), default=0.005, show_default=True,
              help="Stop when the certified gap is below this fraction (0: prove optimality).")
# The default is the designer's own (archdesign.optimize.mp.DEFAULT_MAX_NODES, checked by
# a test): importing it here would load cvxpy for `archdesign --help`.
@click.option("--max-nodes", type=click.IntRange(min=1),
              help="Relaxations solved before returning the best design with its certified "
                   "gap (the same design on any machine) [default: 1000].")
@click.option("--time-limit", type=FiniteFloat(min=0, min_open=True),
              help="Also stop after this many seconds (the design then depends on the "
                   "machine's speed and load) [default: none].")
@click.option("--no-kernel-rule", is_flag=True,
              help="Drop DeepMAD's ImageNet rule kernel <= feature map / 1.5 (CIFAR-sized "
                   "spaces, whose last feature maps are 4x4, cannot meet it).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the spec (JSON/YAML).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def design_command(space: str, flops: str | None, params_: str | None,
                   activations: str | None, peak_memory: str | None, rho: float | None,
                   latency: str | None, hardware: str | None, latency_model: str | None,
                   resolution: int | None,
                   objective: str, tolerance: float, max_nodes: int | None,
                   time_limit: float | None, no_kernel_rule: bool,
                   out: str | None,
                   as_json: bool) -> None:
    """Design the most expressive network of --space within the budgets (DeepMAD MP).

    The result carries a certified upper bound and gap. A space the MP cannot model is
    enumerated exactly when it is small (NAS-Bench-Macro: gap 0), else designed by a local
    search, and then says it has no upper bound."""
    from archdesign.optimize import Budgets, DesignRules, design

    if out:
        check_output("--out", out, (".json", ".yaml", ".yml"))
    budgets = Budgets(
        flops=_budget("flops", flops, "--flops"),
        params=_budget("params", params_, "--params"),
        activations=_budget("activations", activations, "--activations"),
        peak_activation_bytes=_budget("memory", peak_memory, "--peak-memory"),
        rho=rho, latency_ms=_budget("latency", latency, "--latency"))
    if not budgets.items():
        raise InputError("give at least one budget (--flops, --params, --rho, --latency, ...)")
    fixed = {"resolution": resolution} if resolution is not None else None
    from archdesign.spaces import get_space

    the_space = get_space(space)
    if fixed and "resolution" not in {p.name for p in the_space.parameters}:
        if resolution != the_space.spec().resolution:
            raise InputError(f"--resolution: space {the_space.name!r} has a fixed resolution "
                             f"{the_space.spec().resolution}")
        fixed = None
    limits: dict[str, Any] = {"max_nodes": max_nodes} if max_nodes is not None else {}
    rules = DesignRules(max_kernel_ratio=None) if no_kernel_rule else None
    result = design(the_space, budgets, objective, hardware, rules=rules, tolerance=tolerance,
                    time_limit=time_limit, fixed=fixed, latency_model=latency_model,
                    fallback=True, **limits)
    if out:
        result.spec.save(out)
    if as_json:
        print_json(result.to_dict())
        return
    _print_human(result)


def _per_block(stage: StageSpec, name: str) -> str:
    """A stage's field, or block by block (comma-separated) where its blocks differ (OFA,
    FBNet); the same value in a row is shown once."""
    own = getattr(stage, name)
    values = [own if getattr(b, name) is None else getattr(b, name) for b in stage.blocks] \
        or [own]
    shown = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return shown[0] if len(set(shown)) == 1 else ",".join(shown)


def _print_human(result: object) -> None:
    from archdesign.layers import stage_name
    from archdesign.optimize import Design

    assert isinstance(result, Design)
    console = Console()
    spec = result.spec
    hidden = any(s.hidden_width is not None for s in spec.stages)  # free bottleneck widths
    grouped = any(s.group_width is not None for s in spec.stages)  # RegNet, ResNeXt
    se = any(s.se_ratio for s in spec.stages)
    extra = [hidden, grouped, se]
    rows = [["stem", "conv", str(spec.stem.width), "1", str(spec.stem.stride),
             str(spec.stem.kernel), *([""] * sum(extra)), ""]]
    rows += [[stage_name(i), _per_block(s, "block"), str(s.width), str(s.depth), str(s.stride),
              _per_block(s, "kernel"),
              *(v for v, shown in zip((str(s.hidden_width or ""), str(s.group_width or ""),
                                       f"{s.se_ratio:g}"), extra, strict=True) if shown),
              _per_block(s, "expansion")]
             for i, s in enumerate(spec.stages)]
    print_table(console, f"design in {result.spec.name or 'space'} @ {spec.resolution}px",
                [Column("stage", kind="name"), Column("block", kind="name"), Column("width"),
                 Column("depth"), Column("stride", drop=2), Column("kernel"),
                 *(Column(name) for name, shown in zip(("hidden width", "group width", "SE"),
                                                       extra, strict=True) if shown),
                 Column("expansion", drop=1)], rows)
    f = result.figures
    bound = "no upper bound (not certified: see the note)" \
        if result.upper_bound is None or result.gap is None else \
        f"upper bound {result.upper_bound:.2f}   gap {100 * result.gap:.3f}%"
    console.print(f"score ({result.objective}) {result.score:.2f}   {bound}   "
                  f"({result.status}, {result.nodes} nodes, {result.seconds:.1f}s)")
    rows = []
    for name, limit in result.budgets.items().items():
        price = result.shadow_prices.get(name, {}).get("per_10_percent")
        rows.append([name, f"{f[name]:.6g}", f"{limit:.6g}", f"{100 * f[name] / limit:.1f}%",
                     "yes" if name in result.binding else "",
                     "" if price is None else f"{price:.2f}"])
    print_table(console, "budgets",
                [Column("budget", kind="name"), Column("used"), Column("limit"),
                 Column("use", drop=2), Column("binding", kind="name"),
                 Column("score per +10%", drop=1)], rows)
    if result.latency_certified is not None:
        console.print(f"latency in the bound: {result.latency_certified}")
    for note in result.notes:
        console.print(f"note: {note}", style="yellow")

