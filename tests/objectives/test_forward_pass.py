"""NASWOT and SynFlow: the quantities of their papers, on tiny networks."""

from __future__ import annotations

import math

import pytest

from archdesign.errors import InputError
from archdesign.objectives import get_objective
from archdesign.spec import ArchSpec, StageSpec, StemSpec


def tiny(width: int = 8, depth: int = 1) -> ArchSpec:
    return ArchSpec(stages=(StageSpec("basic", width, depth, 1),
                            StageSpec("basic", 2 * width, depth, 2)),
                    stem=StemSpec(width, 3, 2), resolution=32)


def test_naswot_kernel_is_bounded_by_its_units() -> None:
    # K_ii = N_A, so log det K <= batch * log N_A (Hadamard), and K is positive definite
    details = get_objective("naswot", batch=4).details(tiny())
    assert details["units"] > 0
    assert -math.inf < details["score"] <= 4 * math.log(details["units"]) + 1e-9


def test_naswot_needs_two_inputs() -> None:
    with pytest.raises(InputError, match="batch"):
        get_objective("naswot", batch=1)


def test_synflow_grows_with_width_and_depth() -> None:
    synflow = get_objective("synflow")
    base = synflow.score(tiny())
    assert synflow.score(tiny(width=16)) > base
    assert synflow.score(tiny(depth=3)) > base


def test_synflow_does_not_overflow_on_a_deep_network() -> None:
    deep = ArchSpec(stages=(StageSpec("basic", 8, 40, 1),), stem=StemSpec(8, 3, 2),
                    resolution=16)
    assert math.isfinite(get_objective("synflow").score(deep))
