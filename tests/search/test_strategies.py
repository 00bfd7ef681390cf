"""The contract every registered strategy keeps: pinned seeds give pinned trials, a batch
size that depends on the strategy and population only, and a resumed search that
continues the interrupted one."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from archdesign.errors import InputError
from archdesign.report import load_trials
from archdesign.runs import RunDir
from archdesign.search import REGISTRY, STRATEGIES, SearchConfig, Strategy, get_strategy, run_search

TINY_SPACE = str(Path(__file__).parents[1] / "optimize" / "tiny-bottleneck.yaml")


def test_the_registry_is_the_list_of_strategies() -> None:
    assert tuple(REGISTRY) == STRATEGIES
    assert all(isinstance(s, Strategy) and s.name == name for name, s in REGISTRY.items())
    with pytest.raises(InputError, match=r"grid.*not one of"):
        get_strategy("grid")
    assert [n for n, s in REGISTRY.items() if s.mp_seeded] == ["mp+nsga2", "mp"]
    assert [n for n, s in REGISTRY.items() if s.seeds_only] == ["mp"]


@pytest.mark.parametrize("name", STRATEGIES)
def test_sampler_is_a_new_pinned_optuna_sampler(name: str) -> None:
    strategy = get_strategy(name)
    a, b = strategy.sampler(3, 10), strategy.sampler(3, 10)
    assert isinstance(a, optuna.samplers.BaseSampler) and a is not b
    # the same seed: the same first draws from a fresh study
    dists = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    draws = [[optuna.create_study(sampler=s).ask(dists).params["x"] for _ in range(1)]
             for s in (a, b)]
    assert draws[0] == draws[1]


@pytest.mark.parametrize("name", STRATEGIES)
def test_batch_size_is_positive_and_follows_the_population_only(name: str) -> None:
    strategy = get_strategy(name)
    sizes = {p: strategy.batch_size(p) for p in (2, 10, 50)}
    assert all(isinstance(n, int) and n >= 1 for n in sizes.values())
    if isinstance(strategy.sampler(0, 10), optuna.samplers.NSGAIISampler):
        assert sizes == {2: 2, 10: 10, 50: 50}  # one generation per batch
    else:
        assert len(set(sizes.values())) == 1


def _records(run: RunDir, config: SearchConfig) -> list[tuple]:
    return [(t.number, t.state, t.params, t.values, t.constraints)
            for t in load_trials(run, config)]


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_seed_same_trials_and_a_resume_continues(name: str, tmp_path: Path) -> None:
    """Two runs of one seed record the same trials; a run stopped half way and resumed
    records the uninterrupted run's first half, then goes on to the full count. (An MP
    seeded run's seeds depend on its number of trials: it is compared with a second full
    run instead.)"""
    batch = get_strategy(name).batch_size(4)
    trials = 4 if batch == 1 else 2 * batch
    full = SearchConfig(TINY_SPACE, "x86-avx2", strategy=name, trials=trials, population=4,
                        seed=2, budgets={"latency": 0.2})
    half = SearchConfig(**{**full.to_dict(), "trials": trials // 2})
    a, b = RunDir(tmp_path / "a"), RunDir(tmp_path / "b")
    strategy = get_strategy(name)
    done = run_search(full, a).done
    run_search(half, b)
    if strategy.mp_seeded:
        again = RunDir(tmp_path / "again")
        run_search(full, again)
        assert _records(again, full) == _records(a, full)
    else:
        assert _records(b, half) == _records(a, full)[:trials // 2]
    resumed = run_search(full, b, resume=True)
    assert resumed.done == done
    records = _records(b, full)
    assert [r[0] for r in records] == list(range(done))
    if not strategy.seeds_only:
        assert done == trials
    else:  # the MP's designs alone: the same designs, whichever session evaluated them
        assert sorted(map(str, (r[2] for r in records))) == \
            sorted(map(str, (r[2] for r in _records(a, full))))
