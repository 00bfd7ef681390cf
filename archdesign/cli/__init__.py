"""The ``archdesign`` command line: a table of thin commands over the library.

Each command lives in its own module of this package and is registered in ``_COMMANDS``.
Commands parse, call the library, print; bad input (:class:`InputError`) exits with 2.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click
from rich.console import Console

from archdesign.errors import InputError

# command name -> "module:attribute" (imported lazily so `archdesign --help` is fast)
_COMMANDS: dict[str, str] = {
    "cost": "archdesign.cli.cost:cost_command",
    "design": "archdesign.cli.design:design_command",
    "score": "archdesign.cli.score:score_command",
    "hardware": "archdesign.cli.hardware:hardware_command",
    "latency": "archdesign.cli.latency:latency_command",
    "profile": "archdesign.cli.profile:profile_command",
    "spaces": "archdesign.cli.spaces:spaces_command",
    "search": "archdesign.cli.search:search_command",
    "pareto": "archdesign.cli.pareto:pareto_command",
    "runs": "archdesign.cli.runs:runs_command",
    "compare": "archdesign.cli.compare:compare_command",
    "export": "archdesign.cli.export:export_command",
    "build": "archdesign.cli.build:build_command",
}

err_console = Console(stderr=True)


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InputError as exc:
            err_console.print(f"error: {exc}", style="bold red", markup=False, highlight=False,
                              soft_wrap=True)
            sys.exit(2)
        except OSError as exc:  # a full disk, a read-only file system, a vanished directory
            where = f"{exc.filename}: " if exc.filename else ""
            err_console.print(f"error: {where}{exc.strerror or exc}", style="bold red",
                              markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)


@click.group(cls=_LazyGroup)
@click.version_option(package_name="archdesign")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Design the most capable CNN that fits your hardware."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
