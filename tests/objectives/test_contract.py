"""One contract suite over every registered objective (and a fitted one)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from archdesign.errors import InputError
from archdesign.objectives import Objective, get_objective, list_objectives
from archdesign.spec import ArchSpec, StageSpec, StemSpec

# small settings for the forward-pass objectives keep the suite fast
SETTINGS: dict[str, dict[str, Any]] = {"zen": {"batch": 4}, "naswot": {"batch": 4}}
FITTED_TERMS = [{"objective": "flops", "mean": 15.0, "std": 1.0, "weight": 0.5},
                {"objective": "deepmad", "mean": 100.0, "std": 50.0, "weight": 1.0,
                 "settings": {"beta": 5.0}},
                {"objective": "params", "mean": 10.0, "std": 2.0, "weight": 0.0}]


def tiny(width: int = 8, depth: int = 1, resolution: int = 16) -> ArchSpec:
    return ArchSpec(stages=(StageSpec("basic", width, depth, 1),
                            StageSpec("basic", 2 * width, depth, 2)),
                    stem=StemSpec(width, 3, 2), resolution=resolution)


def make(name: str, **extra: Any) -> Objective:
    if name == "fitted":
        return get_objective("fitted", terms=FITTED_TERMS, validation={"loo_kendall_tau": 0.5},
                             **extra)
    return get_objective(name, **{**SETTINGS.get(name, {}), **extra})


NAMES = [*list_objectives(), "fitted"]


def test_the_issue_objectives_are_registered() -> None:
    assert set(list_objectives()) >= {"deepmad", "zen", "naswot", "synflow", "flops",
                                      "params", "activations"}


@pytest.mark.parametrize("name", NAMES)
def test_score_is_a_pure_function_and_matches_its_details(name: str) -> None:
    objective = make(name)
    first = objective.score(tiny())
    other = objective.score(tiny(width=16))
    assert objective.score(tiny()) == first  # scoring another spec changed nothing
    assert math.isfinite(first) and math.isfinite(other)
    assert first != other
    assert objective.details(tiny())["score"] == first
    assert make(name).score(tiny()) == first  # a fresh instance: same seed, same score


@pytest.mark.parametrize("name", NAMES)
def test_settings_round_trip(name: str) -> None:
    objective = make(name)
    again = get_objective(objective.name, **objective.settings())
    assert again.settings() == objective.settings()
    assert again.score(tiny()) == objective.score(tiny())


@pytest.mark.parametrize("name", [n for n in NAMES
                                  if "seed" in make(n).settings()])
def test_seeded_objectives_are_deterministic_given_the_seed(name: str) -> None:
    assert make(name, seed=3).score(tiny()) == make(name, seed=3).score(tiny())


@pytest.mark.parametrize("name", [n for n in NAMES if "resolution" in make(n).settings()])
def test_resolution_setting_scores_the_spec_at_that_size(name: str) -> None:
    assert make(name, resolution=24).score(tiny()) == make(name).score(tiny(resolution=24))


def test_unknown_settings_and_names_are_input_errors() -> None:
    with pytest.raises(InputError, match="flops"):
        get_objective("flops", batch=3)
    with pytest.raises(InputError, match="known objectives"):
        get_objective("nope")


def test_size_objectives_are_logs_of_the_counts() -> None:
    from archdesign.cost import cost

    c = cost(tiny())
    for name in ("flops", "params", "activations"):
        assert get_objective(name).score(tiny()) == pytest.approx(math.log(getattr(c, name)))
