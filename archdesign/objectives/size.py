"""Size baselines: the log of a network's FLOPs, parameters or activations.

The simplest training-free predictors of accuracy, and the ones any other score has to beat:
larger networks of one family and recipe are usually more accurate. Exact counts from
:func:`archdesign.cost.cost` (the project's counting conventions), so they cost no forward
pass.
"""

from __future__ import annotations

import math
from typing import Any

from archdesign.cost import cost
from archdesign.objectives.base import Objective
from archdesign.spec import ArchSpec

SIZE_FIGURES = ("flops", "params", "activations")


class SizeObjective(Objective):
    """log of one of ``SIZE_FIGURES`` (the objective's name)."""

    def __init__(self, figure: str) -> None:
        if figure not in SIZE_FIGURES:
            raise ValueError(f"size objective: {figure!r} is not one of {list(SIZE_FIGURES)}")
        self.name = figure

    def _value(self, spec: ArchSpec) -> int:
        return int(getattr(cost(spec), self.name))

    def score(self, spec: ArchSpec) -> float:
        return math.log(self._value(spec))

    def details(self, spec: ArchSpec) -> dict[str, Any]:
        value = self._value(spec)
        return {"score": math.log(value), self.name: value}
