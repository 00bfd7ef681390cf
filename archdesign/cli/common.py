"""Helpers shared by CLI commands: resolving which architecture a command is about."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click

from archdesign.errors import InputError
from archdesign.spec import ArchSpec, load_spec


class FiniteFloat(click.FloatRange):
    """A float range that also refuses nan and inf (``FloatRange`` lets nan through)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def parse_assignments(items: tuple[str, ...]) -> dict[str, str]:
    """``("a=1", "b=x")`` -> ``{"a": "1", "b": "x"}``; a bad item is an InputError."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def resolve_spec(spec_file: str | None, arch: str | None, space: str | None,
                 assignments: tuple[str, ...], resolution: int | None = None) -> ArchSpec:
    """The spec named by exactly one of a file, ``--arch`` or ``--space`` (+ ``--set``)."""
    given = [x for x in (spec_file, arch, space) if x]
    if len(given) != 1:
        raise InputError("give exactly one of SPEC_FILE, --arch NAME or --space NAME")
    if assignments and not space:
        raise InputError("--set applies to --space only")
    if spec_file:
        spec = load_spec(spec_file)
    elif arch:
        from archdesign.zoo import get_arch

        spec = get_arch(arch)
    else:
        from archdesign.spaces import get_space

        assert space is not None
        spec = get_space(space).spec(parse_assignments(assignments))
    if resolution is not None:
        try:
            spec = ArchSpec.from_dict({**spec.to_dict(), "resolution": resolution},
                                      "--resolution")
        except InputError as exc:
            raise InputError(str(exc)) from None
    return spec


def spec_source_options(func: Any) -> Any:
    """SPEC_FILE | --arch NAME | --space NAME --set k=v ... options."""
    func = click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                        help="Set a space parameter (with --space; repeatable).")(func)
    func = click.option("--space", help="Search space name; its defaults with --set.")(func)
    func = click.option("--arch", help="Zoo architecture name (see `archdesign spaces`); "
                        "NAME@RES for another input resolution.")(func)
    return click.argument("spec_file", required=False,
                          type=click.Path(dir_okay=False))(func)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
