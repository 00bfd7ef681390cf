"""The MP seeding of a search: a per-block space's models are built once per sweep, and
the seeds are those of a sweep that rebuilds them at every level."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from archdesign.evaluate import LocalEvaluator
from archdesign.optimize import choices
from archdesign.search import SearchConfig
from archdesign.search.seeding import mp_seeds
from archdesign.search.space import space_extent

TINY_CHOICES = str(Path(__file__).parents[1] / "optimize" / "tiny-choices.yaml")


def test_a_sweep_builds_the_per_block_models_once_and_seeds_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = SearchConfig(TINY_CHOICES, "pixel3", objectives=("score", "flops"), trials=40)
    extent = space_extent(LocalEvaluator(config.eval_config), config.seed)
    built: list[dict] = []
    build = choices.build_choice_model

    def counted(*args: object) -> choices.ChoiceModel:
        model = build(*args)  # type: ignore[arg-type]
        built.append(model.combo)
        return model

    monkeypatch.setattr(choices, "build_choice_model", counted)
    shared = mp_seeds(config, extent, count=5)
    assert sorted(c["resolution"] for c in built) == [32, 48]  # one model per resolution
    built.clear()
    monkeypatch.setattr(choices, "shared_models", contextlib.nullcontext)
    rebuilt = mp_seeds(config, extent, count=5)
    assert len(built) == 2 * 5  # both resolutions at each of the 5 levels
    assert rebuilt == shared
    assert len(shared) >= 5 and len({tuple(sorted(p.items())) for p in shared}) == len(shared)
