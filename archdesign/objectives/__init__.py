"""Training-free objectives: the DeepMAD entropy score and effectiveness, Zen-NAS, NASWOT,
SynFlow, the size baselines (log FLOPs, params, activations), and fitted combinations of
them (:mod:`archdesign.objectives.fitted`, checked by :mod:`archdesign.objectives.validate`).

``get_objective("deepmad")`` returns a configured :class:`Objective`; every objective
scores an :class:`~archdesign.spec.ArchSpec` (larger is better).
"""

from __future__ import annotations

from archdesign.objectives.base import Objective, describe, get_objective, list_objectives
from archdesign.objectives.deepmad import DeepMAD, effectiveness, groups

__all__ = ["DeepMAD", "Objective", "describe", "effectiveness", "get_objective", "groups",
           "list_objectives"]
