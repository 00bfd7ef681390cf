"""``archdesign score``: a training-free objective of any architecture; with ``--validate``
its rank agreement with measured accuracy, with ``--fit`` a fitted objective."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from archdesign.cli.common import (
    Column,
    print_json,
    print_table,
    resolve_spec,
    spec_source_options,
)
from archdesign.errors import InputError


@click.command("score")
@spec_source_options
@click.option("--objective", "objectives", multiple=True, metavar="NAME",
              help="Registered objective (deepmad, zen, naswot, synflow, flops, params, "
                   "activations) or a fitted objective's YAML file [default: deepmad; with "
                   "--validate/--fit: every registered one]. Repeatable with --validate/--fit.")
@click.option("--validate", "validate_file", type=click.Path(dir_okay=False),
              help="Measurement CSV of trained networks: rank agreement of each objective.")
@click.option("--fit", "fit_file", type=click.Path(dir_okay=False),
              help="Measurement CSV of trained networks: fit a combination of objectives "
                   "(with --out).")
@click.option("--out", type=click.Path(dir_okay=False), help="Where --fit writes OBJ.yaml.")
@click.option("--column", default="accuracy", show_default=True,
              help="The measured column of --validate/--fit.")
@click.option("--lower-is-better", is_flag=True,
              help="The column is an error (e.g. top1_err): lower is better.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def score_command(spec_file: str | None, arch: str | None, space: str | None,
                  assignments: tuple[str, ...], objectives: tuple[str, ...],
                  validate_file: str | None, fit_file: str | None, out: str | None,
                  column: str, lower_is_better: bool, as_json: bool) -> None:
    """Score SPEC_FILE, a zoo --arch, or a --space point with a training-free objective;
    or check objectives against trained networks (--validate FILE, --fit FILE --out)."""
    if validate_file and fit_file:
        raise InputError("give one of --validate FILE and --fit FILE")
    if validate_file or fit_file:
        if spec_file or arch or assignments:
            raise InputError("--validate/--fit take the networks of FILE, not SPEC_FILE, "
                             "--arch or --set (--space names the space of FILE's rows)")
        if fit_file and not out:
            raise InputError("--fit: give --out OBJ.yaml, where the fitted objective goes")
        if out and not fit_file:
            raise InputError("--out applies to --fit only")
        from archdesign.measurements import read_measurements

        measured = read_measurements(validate_file or fit_file or "", column=column,
                                     space=space, positive=False)
        truth = [-v if lower_is_better else v for v in measured.values]
        if validate_file:
            _validate(measured.specs, truth, objectives, as_json, measured.skipped)
        else:
            source = {"file": str(fit_file), "column": column,
                      "lower_is_better": lower_is_better}
            _fit(measured.specs, truth, objectives, out or "", source, as_json)
        return
    for option, given in (("--out", out), ("--lower-is-better", lower_is_better),
                          ("--column", column != "accuracy")):
        if given:
            raise InputError(f"{option} applies to --validate/--fit only")
    if len(objectives) > 1:
        raise InputError("give one --objective to score a network (several with --validate)")
    _score_one(resolve_spec(spec_file, arch, space, assignments),
               objectives[0] if objectives else "deepmad", as_json)


def _agreement_table(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    print_table(console, title,
                [Column("objective", kind="name"), Column("n"), Column("tau"),
                 Column("Spearman"), Column("FLOPs-decile tau"), Column("top-10%")],
                [[r["objective"], str(r["n"]), fmt(r["kendall_tau"]), fmt(r["spearman"]),
                  fmt(r["tau_within_flops"]), fmt(r["top10_precision"])] for r in rows])


def _validate(specs: list[Any], truth: list[float], objectives: tuple[str, ...],
              as_json: bool, skipped: int) -> None:
    from archdesign.objectives.validate import validate

    rows = [a.to_dict() for a in validate(specs, truth, objectives or None)]
    if as_json:
        print_json({"n": len(specs), "skipped": skipped, "objectives": rows})
        return
    console = Console()
    _agreement_table(console, f"rank agreement with measured accuracy ({len(specs)} "
                              f"networks)", rows)
    if skipped:
        console.print(f"{skipped} rows without a value skipped")


def _fit(specs: list[Any], truth: list[float], objectives: tuple[str, ...], out: str,
         source: dict[str, Any], as_json: bool) -> None:
    from archdesign.objectives.validate import fit

    result = fit(specs, truth, objectives or None, source=source)
    result.objective.save(out)
    if as_json:
        print_json({"out": out, "train": result.train.to_dict(),
                    "leave_one_out": result.held_out.to_dict(), "dropped": list(result.dropped),
                    **result.objective.settings()})
        return
    console = Console()
    print_table(console, "fitted objective: weights of the standardized scores",
                [Column("objective", kind="name"), Column("weight")],
                [[term.objective, f"{term.weight:.4f}"] for term in result.objective.terms])
    _agreement_table(console, "rank agreement", [
        {**result.train.to_dict(), "objective": "fitted (on the file)"},
        {**result.held_out.to_dict(), "objective": "fitted (leave-one-out)"}])
    if result.dropped:
        console.print(f"left out (constant or not finite on some network): "
                      f"{', '.join(result.dropped)}")
    console.print(f"wrote {out}: use it as --objective {out} (design checks it on designs "
                  f"only) or --score {out} (search)")


def _score_one(spec: Any, objective: str, as_json: bool) -> None:
    from archdesign.objectives import effectiveness, get_objective

    scorer = get_objective(objective)
    details = scorer.details(spec)
    details.setdefault("rho", effectiveness(spec))
    if as_json:
        print_json({"objective": scorer.name, "name": spec.name, **details,
                    "settings": scorer.settings(), "spec": spec.to_dict()})
        return
    console = Console()
    console.print(f"{spec.name or 'architecture'}: {scorer.name} score "
                  f"[bold]{details['score']:.4f}[/bold]   ρ {details['rho']:.4f}")
    if "groups" in details:
        print_table(console, "DeepMAD groups (cut at each downsampling block)",
                    [Column(col) for col in ("group", "channels", "resolution", "entropy S",
                                             "convs", "ρ", "α", "α·H")],
                    [[str(i), str(g["channels"]), str(g["resolution"]), f"{g['entropy']:.3f}",
                      str(g["convs"]), f"{g['rho']:.4f}", f"{g['alpha']:g}",
                      f"{g['weighted']:.2f}"] for i, g in enumerate(details["groups"])])
        console.print(f"depth penalty {details['depth_penalty']:.3f}")
