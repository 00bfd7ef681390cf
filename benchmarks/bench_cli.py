"""CLI start-up time: wall time of short ``archdesign`` commands against the interpreter.

Each command runs in a fresh subprocess (``python -m archdesign ...``, the same code path
as the ``archdesign`` script), ``--runs`` times after one untimed warm-up run (so the OS
file cache is warm for every row); the median is reported next to the baselines
``python -c pass`` and ``python -c "import torch"`` measured in the same run. Target: every
command that needs no network module under 0.5 s.

    python benchmarks/bench_cli.py            # 7 runs per command
    python benchmarks/bench_cli.py --quick    # 3 runs per command
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

TARGET_S = 0.5

BASELINES: list[tuple[str, list[str]]] = [
    ("python -c pass", ["-c", "pass"]),
    ('python -c "import torch"', ["-c", "import torch"]),
]

# A design that the branch and bound settles in well under a second, so the row shows the
# start-up cost of the MP stack (cvxpy, scipy) rather than the solve.
DESIGN_RUN = ["design", "--space", "resnet-basic", "--flops", "1.8G"]

COMMANDS: list[list[str]] = [
    ["--help"],
    ["spaces"],
    ["cost", "--arch", "resnet18"],
    ["score", "--arch", "resnet18"],
    ["hardware"],
    ["design", "--help"],
    DESIGN_RUN,
]


def wall_time(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_time(args: list[str], runs: int) -> float:
    wall_time(args)
    return statistics.median(wall_time(args) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 runs per command")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs

    table = Table(title=f"start-up wall time, median of {runs} runs (target < {TARGET_S} s)")
    for col in ("command", "seconds", "< target"):
        table.add_column(col, justify="left" if col == "command" else "right")
    for label, argv in BASELINES:
        table.add_row(label, f"{median_time(argv, runs):.3f}", "", style="dim")
    for command in COMMANDS:
        seconds = median_time(["-m", "archdesign", *command], runs)
        table.add_row("archdesign " + " ".join(command), f"{seconds:.3f}",
                      "yes" if seconds < TARGET_S else "no")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
