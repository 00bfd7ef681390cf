"""Zen-NAS: a real forward pass, deterministic for a fixed seed."""

from __future__ import annotations

import math

import pytest

from archdesign.objectives import get_objective
from archdesign.spec import ArchSpec, StageSpec, StemSpec


def small(width: int, depth: int) -> ArchSpec:
    return ArchSpec(stages=(StageSpec("basic", width, depth, 1),
                            StageSpec("basic", 2 * width, depth, 2)),
                    stem=StemSpec(width, 3, 2), resolution=32)


def test_zen_is_deterministic_and_splits_into_its_parts() -> None:
    zen = get_objective("zen", batch=4)
    details = zen.details(small(16, 1))
    assert details == zen.details(small(16, 1))
    assert details["score"] == pytest.approx(details["log_expected_perturbation"]
                                             + details["bn_variance_correction"])
    # 3 BN layers in the stem+stage 1, 3 (incl. the projection's) in stage 2 ... all finite
    assert math.isfinite(details["score"])


def test_zen_grows_with_depth_and_width() -> None:
    zen = get_objective("zen", batch=4)
    base = zen.score(small(16, 1))
    assert zen.score(small(16, 3)) > base
    assert zen.score(small(48, 1)) > base
