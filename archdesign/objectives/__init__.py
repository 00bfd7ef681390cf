"""Training-free objectives: the DeepMAD entropy score and effectiveness, Zen-NAS.

``get_objective("deepmad")`` returns a configured :class:`Objective`; every objective
scores an :class:`~archdesign.spec.ArchSpec` (larger is better).
"""

from __future__ import annotations

from archdesign.objectives.base import Objective, get_objective, list_objectives
from archdesign.objectives.deepmad import DeepMAD, effectiveness, groups

__all__ = ["DeepMAD", "Objective", "effectiveness", "get_objective", "groups",
           "list_objectives"]
