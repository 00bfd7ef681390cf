"""Rank agreement figures by hand, and a fitted objective from a handful of networks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from archdesign.errors import InputError
from archdesign.objectives import describe, get_objective
from archdesign.objectives.fitted import load_fitted
from archdesign.objectives.validate import agreement, fit, flops_bins, validate
from archdesign.spaces import get_space
from archdesign.spec import ArchSpec


def test_perfect_and_reversed_rankings() -> None:
    truth = list(range(20))
    flops = [10.0 * (i + 1) for i in range(20)]
    same = agreement("x", truth, truth, flops)
    assert (same.kendall_tau, same.spearman, same.tau_within_flops, same.top10_precision) == \
        pytest.approx((1.0, 1.0, 1.0, 1.0))
    reverse = agreement("x", truth[::-1], truth, flops)
    assert (reverse.kendall_tau, reverse.tau_within_flops, reverse.top10_precision) == \
        pytest.approx((-1.0, -1.0, 0.0))


def test_within_flops_tau_counts_only_pairs_of_one_decile() -> None:
    # two networks per FLOPs level; the score orders the levels right but each pair wrong
    flops = [1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0, 16.0, 16.0]
    truth = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    scores = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]
    assert len(set(flops_bins(flops).tolist())) == 5
    a = agreement("x", scores, truth, flops)
    assert a.tau_within_flops == pytest.approx(-1.0)
    assert a.kendall_tau > 0.7
    assert a.top10_precision == 0.0  # top 1 of 10: the score's best is the second best


def test_a_singular_score_ranks_last_instead_of_failing() -> None:
    a = agreement("x", [-math.inf, 1, 2, 3], [0, 1, 2, 3], [1, 2, 3, 4])
    assert a.kendall_tau == pytest.approx(1.0)


def macro_points() -> list[ArchSpec]:
    space = get_space("nas-bench-macro")
    rng = np.random.default_rng(0)
    choices = ["id", "ir_3x3_t3", "ir_5x5_t6"]
    return [space.spec({f"l{i}": choices[int(rng.integers(3))] for i in range(8)})
            for _ in range(14)]


def test_fit_a_handful_recovers_the_size_trend_and_round_trips(tmp_path: Path) -> None:
    from archdesign.cost import cost

    specs = macro_points()
    rng = np.random.default_rng(1)
    truth = [math.log(cost(s).params) + 0.05 * rng.normal() for s in specs]
    result = fit(specs, truth, ["deepmad", "params", "flops"], source={"file": "x.csv"})
    assert result.held_out.n == 14
    assert result.held_out.kendall_tau > 0.6
    assert all(t.weight >= 0 for t in result.objective.terms)
    assert result.objective.validation()["loo_kendall_tau"] == result.held_out.kendall_tau
    path = tmp_path / "obj.yaml"
    result.objective.save(path)
    assert "!!python" not in path.read_text()  # plain data
    loaded = get_objective(str(path))
    assert loaded.settings() == result.objective.settings()
    assert loaded.score(specs[0]) == result.objective.score(specs[0])
    assert "leave-one-out Kendall tau" in describe(loaded, str(path))
    assert validate(specs, truth, [loaded])[0].kendall_tau > 0.6


def test_fit_rejects_too_few_networks_and_fitted_terms(tmp_path: Path) -> None:
    specs = macro_points()
    with pytest.raises(InputError, match="at least"):
        fit(specs[:3], [1.0, 2.0, 3.0], ["flops"])
    with pytest.raises(InputError, match="same measured value"):
        fit(specs, [1.0] * len(specs), ["flops"])
    fitted = get_objective("fitted", terms=[{"objective": "flops", "mean": 0.0, "std": 1.0,
                                             "weight": 1.0}])
    with pytest.raises(InputError, match="cannot be a term"):
        fit(specs, list(range(len(specs))), [fitted])


@pytest.mark.parametrize("text, match", [
    ("terms: []\n", "not a fitted objective"),
    ("archdesign_fitted_objective: 1\nterms: [{objective: flops, mean: 0, std: 0, "
     "weight: 1}]\n", "std must be > 0"),
    ("archdesign_fitted_objective: 1\nterms: [{objective: flops, mean: 0, std: 1, "
     "weight: -1}]\n", "weight must be >= 0"),
    ("archdesign_fitted_objective: 1\nterms: [{objective: nope, mean: 0, std: 1, "
     "weight: 1}]\n", "unknown objective"),
    ("archdesign_fitted_objective: 1\nterms: [{objective: flops, mean: 0, std: 1, "
     "weight: 1, extra: 2}]\n", "unknown"),
    ("!!python/object:os.system x\n", "cannot read"),
])
def test_bad_fitted_files_name_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as info:
        load_fitted(path)
    assert str(path) in str(info.value)


def test_a_search_records_its_fitted_score_objective_as_data(tmp_path: Path) -> None:
    from archdesign.search import SearchConfig, _config_document

    path = tmp_path / "obj.yaml"
    specs = macro_points()
    fit(specs, list(range(len(specs))), ["flops"], source={"file": "x.csv"}).objective.save(path)
    document = _config_document(SearchConfig("nas-bench-macro", "x86-avx2", score=str(path)))
    recorded = document["score_objective"]
    assert recorded["name"] == "fitted"
    assert recorded["validation"]["n"] == len(specs)
    assert get_objective("fitted", **recorded["settings"]).settings() == recorded["settings"]
