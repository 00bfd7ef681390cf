"""``archdesign search``: a multi-objective search with live progress, into a run directory."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from archdesign.errors import InputError
from archdesign.hardware.trust import check_hardware
from archdesign.metrics import BUDGET_NAMES, OBJECTIVE_NAMES, format_budgets, parse_quantity
from archdesign.runs import RunDir
from archdesign.search import (
    DEFAULT_OBJECTIVES,
    STRATEGIES,
    SearchConfig,
    SearchProgress,
    run_search,
)
from archdesign.search_file import MAX_SEED

# Options that define what a search computes; with --resume, any given must match the run.
_CONFIG_OPTIONS = {"space": "space", "hardware": "hardware", "objectives": "objectives",
                   "strategy": "strategy", "seed": "seed", "batch": "batch", "dtype": "dtype",
                   "latency_model": "latency_model", "score": "score",
                   "population": "population", "storage": "storage", "trials": "trials"}
_DEFAULTS = SearchConfig(space="", hardware="")


def _budget_options(func: Any) -> Any:
    helps = {"latency": "Latency budget, e.g. 5ms, 800us (default unit ms).",
             "flops": "FLOP (multiply-accumulate) budget, e.g. 600M, 4.1G.",
             "params": "Parameter budget, e.g. 5M.",
             "activations": "Activation-count budget, e.g. 10M.",
             "memory": "Peak activation + weight memory budget, e.g. 8MiB, 64MB.",
             "rho": "DeepMAD effectiveness budget, e.g. 0.3 (ResNet-sized) or 0.5 "
                    "[default: none]."}
    for name in reversed(BUDGET_NAMES):
        func = click.option(f"--{name}", f"budget_{name}", metavar="AMOUNT",
                            help=helps[name])(func)
    return func


@click.command("search")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Read the options from this YAML file (keys: those of a run's "
                   "config.yaml search section, budgets under budgets:, and workers, "
                   "ray_address, run_dir, resume); options given here override it.")
@click.option("--space", help="Search space name or YAML file (see `archdesign spaces`).")
@click.option("--hardware", help="Hardware profile name or YAML file "
                                 "(see `archdesign hardware list`).")
@_budget_options
@click.option("--objectives", metavar="LIST",
              help=f"Comma-separated, from {', '.join(OBJECTIVE_NAMES)} "
                   f"[default: {','.join(DEFAULT_OBJECTIVES)}].")
@click.option("--strategy", type=click.Choice(STRATEGIES),
              help=f"mp: the MP designer swept over the budget range; mp+nsga2: those "
                   f"designs seed NSGA-II [default: {_DEFAULTS.strategy}].")
@click.option("--trials", type=click.IntRange(min=1), help=f"Trials to record in all [default: "
                                         f"{_DEFAULTS.trials}].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Evaluation workers; more than 1 starts a local Ray instance.")
@click.option("--ray-address", metavar="ADDR", help="Join this Ray cluster (e.g. auto).")
@click.option("--measure", is_flag=True,
              help="Measure the latency of front designs on this machine after the search.")
@click.option("--measure-count", type=click.IntRange(min=1), default=8, show_default=True,
              help="How many front designs --measure times.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), help="Sampler seed [default: 0].")
@click.option("--run-dir", type=click.Path(file_okay=False),
              help="Run directory [default: runs/SPACE-HARDWARE-TIME].")
@click.option("--resume", is_flag=True, help="Continue the search stored in --run-dir.")
@click.option("--storage", metavar="URL",
              help="Optuna RDB storage URL instead of the run directory's journal file.")
@click.option("--batch", type=click.IntRange(min=1), help="Batch size for latency and memory.")
@click.option("--dtype", help="Data type for latency and memory [default: the profile's].")
@click.option("--latency-model", type=click.Choice(["roofline", "table", "fitted"]),
              help="Latency model [default: the profile's].")
@click.option("--score", help="Training-free score objective: a registered name or a "
                               "fitted OBJ.yaml (archdesign score --fit) [default: deepmad].")
@click.option("--population", type=click.IntRange(min=2),
              help="NSGA-II population (also the batch of asked trials).")
@click.pass_context
def search_command(ctx: click.Context, **opts: Any) -> None:
    """Search SPACE for the best networks on HARDWARE: a Pareto front in a run directory."""
    from archdesign.objectives import describe, get_objective

    opts = _with_file(ctx, opts)
    config, run = _resolve(ctx, opts)
    check_hardware(config.hardware, measure=bool(config.measure))
    console = Console(stderr=True)
    console.print(f"[bold]search[/] {config.space} on {config.hardware}: {config.strategy}, "
                  f"{config.trials} trials, objectives {', '.join(config.objectives)}, "
                  f"score {describe(get_objective(config.score), config.score)}, "
                  f"budgets {_budgets_text(config)} -> {run.path}")
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[stats]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("trials", total=config.trials, stats="")

        def on_progress(p: SearchProgress) -> None:
            progress.update(task, completed=p.done, stats=(
                f"feasible {p.feasible}  pareto {p.pareto_size}  hv {p.hypervolume:.4f}"))

        try:
            result = run_search(config, run, workers=opts["workers"],
                                ray_address=opts["ray_address"], resume=opts["resume"],
                                on_progress=on_progress)
        except KeyboardInterrupt:
            progress.stop()
            console.print(f"[yellow]interrupted[/]: every trial told so far is recorded in "
                          f"{run.path}; continue with: archdesign search --run-dir "
                          f"{run.path} --resume")
            sys.exit(130)
    from archdesign.cli.pareto import print_front
    from archdesign.report import load_run

    print_front(load_run(run.path), Console(), limit=15)
    console.print(f"{result.evaluated} trials evaluated in {result.seconds:.1f} s "
                  f"({result.reused} more answered from the study: networks evaluated "
                  f"before; {result.outside} samples outside the space not spent as "
                  f"trials); results in "
                  f"{run.path} (pareto.json, pareto.csv, pareto.png). Next: archdesign pareto "
                  f"{run.path} --plot front.html; archdesign export {run.path} --trial ID "
                  f"--out net.onnx (or net.py, net.pt, net.json); archdesign runs; "
                  f"archdesign compare {run.path} OTHER_RUN")


def _budgets_text(config: SearchConfig) -> str:
    text = format_budgets(config.budgets)
    return text if "rho" in config.budgets else f"{text} (no rho budget)"


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _with_file(ctx: click.Context, opts: dict[str, Any]) -> dict[str, Any]:
    """The options with the --config file's under the command line's."""
    if not opts["config_file"]:
        return opts
    from archdesign.search_file import EXECUTION_KEYS, check_names, read_search_file

    from_file = read_search_file(opts["config_file"])
    merged = dict(opts)
    for key in (*_CONFIG_OPTIONS, *EXECUTION_KEYS):
        if key in from_file and not _given(ctx, key):
            merged[key] = from_file[key]
    for name, amount in from_file.get("budgets", {}).items():
        if not _given(ctx, f"budget_{name}"):
            merged[f"budget_{name}"] = amount
    # the file's measure: N is --measure --measure-count N; each option given overrides
    # its half of it
    if from_file.get("measure") is not None:
        if not _given(ctx, "measure"):
            merged["measure"] = from_file["measure"] > 0
        if not _given(ctx, "measure_count") and from_file["measure"] > 0:
            merged["measure_count"] = from_file["measure"]
    check_names({key: from_file[key] for key in ("space", "hardware", "score")
                 if key in from_file and not _given(ctx, key)}, opts["config_file"])
    return merged


def _resolve(ctx: click.Context, opts: dict[str, Any]) -> tuple[SearchConfig, RunDir]:
    values: dict[str, Any] = {}
    for option, key in _CONFIG_OPTIONS.items():
        if opts[option] is not None:
            values[key] = opts[option]
    if isinstance(values.get("objectives"), str):
        values["objectives"] = tuple(s.strip() for s in values["objectives"].split(",")
                                     if s.strip())
    budgets = {name: parse_quantity(name, opts[f"budget_{name}"]) for name in BUDGET_NAMES
               if opts[f"budget_{name}"] is not None}
    if opts["measure"]:
        values["measure"] = opts["measure_count"]
    if opts["resume"]:
        if not opts["run_dir"]:
            hint = (f" ({opts['config_file']} sets resume: true; give run_dir there or "
                    f"--run-dir)" if not _given(ctx, "resume") else "")
            raise InputError(f"--resume needs the --run-dir of the search to continue{hint}")
        run = RunDir(opts["run_dir"]).require()
        merged = {**run.read_search(), **values}
        if budgets:
            merged["budgets"] = budgets
        merged.setdefault("measure", 0)
        if not opts["measure"]:
            merged["measure"] = 0
        return SearchConfig.from_dict(merged, str(run.config_path)), run
    for required in ("space", "hardware"):
        if required not in values:
            raise InputError(f"--{required} is required (or --resume with a --run-dir)"
                             + (f"; {opts['config_file']} does not set {required}"
                                if opts["config_file"] else ""))
    values["budgets"] = budgets
    source = f"{opts['config_file']} with the options" if opts["config_file"] else "options"
    try:
        config = SearchConfig.from_dict(values, source)
    except InputError as exc:
        if not opts["config_file"] or str(exc).startswith(source):
            raise
        raise InputError(f"{source}: {exc}") from None
    if opts["run_dir"]:
        run = RunDir(opts["run_dir"])
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{Path(config.space).stem}-{Path(config.hardware).stem}-{stamp}"
        run = RunDir(Path("runs") / name)
    return config, run
