"""Shadow prices: what a little more of each budget is worth to the score at a design.

The node relaxation at the design's depths and kernels (widths free in the whole grid box)
with the score replaced by its tangent planes at the design is a smooth convex program in
the widths; the duals of its budget constraints are d(score)/d(log budget), read here per
unit and per +10% of each budget.
"""

from __future__ import annotations

import math

import numpy as np

from archdesign.optimize.relaxation import HullRelaxation, NodeBox


def shadow_prices(relax: HullRelaxation, box: NodeBox,
                  z0: np.ndarray) -> dict[str, dict[str, float]]:
    """d(score)/d(budget) per budget (``per_unit``, ``per_10_percent``) at the design with
    log sizes ``z0``, whose depths and kernels ``box`` fixes."""
    weights = relax.allowed_options(box).astype(float)
    sol = relax.solve(box, tangent_at=relax.group_values(z0, weights))
    out: dict[str, dict[str, float]] = {}
    if sol is None or not math.isfinite(sol.value):
        return out
    for name, con in relax.budget_cons.items():
        # the dual is d score / d log(budget left to the blocks)
        dual = float(con.dual_value or 0.0) / relax.scale
        per_unit = dual / relax.free_budget(name)
        out[name] = {"per_unit": per_unit,
                     "per_10_percent": per_unit * 0.1 * relax.limits[name]}
    if relax.peak_cons:
        dual = relax.peak_dual() / relax.scale
        limit = relax.limits["peak_activation_bytes"]
        out["peak_activation_bytes"] = {"per_unit": dual / limit,
                                        "per_10_percent": dual / limit * 0.1 * limit}
    if relax.rho_cons is not None and relax.rho0 is not None:
        duals = np.asarray(relax.rho_cons.dual_value, dtype=float).ravel() / relax.scale
        # rel_entr(L, ρ0) = L·log(L/ρ0): d/dρ0 = −L/ρ0, so d score/dρ0 = Σ μ_g·L_g/ρ0
        counts = relax.conv_forms[0] @ sol.weights + relax.conv_forms[1]
        per_unit = float(np.sum(duals * counts) / relax.rho0)
        out["rho"] = {"per_unit": per_unit, "per_10_percent": per_unit * relax.rho0 * 0.1}
    return out
