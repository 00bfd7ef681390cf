"""Optimizers over search spaces: the DeepMAD mathematical program and baselines.

``design(space, budgets)`` solves the DeepMAD program by branch and bound over cvxpy
relaxations and returns a :class:`Design` with a certified upper bound (the modules and
their order: :mod:`archdesign.optimize.mp`); the baselines in
:mod:`archdesign.optimize.baselines` exist for comparison.
"""

from __future__ import annotations

from archdesign.optimize.mp import DEFAULT_MAX_NODES, Design, design
from archdesign.optimize.problem import Budgets, DesignRules, Evaluation, Problem

__all__ = ["DEFAULT_MAX_NODES", "Budgets", "Design", "DesignRules", "Evaluation", "Problem",
           "design"]
