from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from archdesign.errors import InputError
from archdesign.report import load_trials
from archdesign.runs import RunDir, RunError
from archdesign.search import (
    SearchConfig,
    distributions,
    make_sampler,
    parse_quantity,
    run_search,
    session_seed,
)
from archdesign.spaces import get_space, list_spaces


@pytest.mark.parametrize(("metric", "text", "value"), [
    ("latency", "5ms", 5.0), ("latency", "800us", 0.8), ("latency", "0.5s", 500.0),
    ("latency", "2", 2.0), ("flops", "600M", 6e8), ("flops", "4.1GFLOPs", 4.1e9),
    ("params", "5m", 5e6), ("memory", "2MiB", 2 * 2**20), ("memory", "64MB", 64e6),
    ("activations", "1e6", 1e6),
])
def test_parse_quantity(metric: str, text: str, value: float) -> None:
    assert parse_quantity(metric, text) == pytest.approx(value)


@pytest.mark.parametrize(("metric", "text"), [("latency", "fast"), ("latency", "5kg"),
                                              ("flops", "-1M"), ("latency", "0ms"),
                                              ("score", "5")])
def test_parse_quantity_rejects(metric: str, text: str) -> None:
    with pytest.raises(InputError):
        parse_quantity(metric, text)


@pytest.mark.parametrize("name", list_spaces())
def test_every_space_maps_to_optuna_distributions(name: str) -> None:
    space = get_space(name)
    dists = distributions(space)
    defaults = space.defaults()
    for param in space.parameters:
        assert dists[param.name]._contains(dists[param.name].to_internal_repr(
            defaults[param.name]))


@pytest.mark.parametrize("strategy", ["nsga2", "mp+nsga2", "tpe", "gp", "random", "mp"])
def test_samplers_are_pinned(strategy: str) -> None:
    sampler = make_sampler(strategy, 7, 10)
    assert isinstance(sampler, optuna.samplers.BaseSampler)


def test_config_validation() -> None:
    with pytest.raises(InputError, match="objectives"):
        SearchConfig("mobilenet", "x86-avx2", objectives=("accuracy",))
    with pytest.raises(InputError, match="strategy"):
        SearchConfig("mobilenet", "x86-avx2", strategy="grid")
    with pytest.raises(InputError, match="must include score"):
        SearchConfig("mobilenet", "x86-avx2", strategy="mp", objectives=("latency", "flops"))
    with pytest.raises(InputError, match="unknown keys"):
        SearchConfig.from_dict({"space": "mobilenet", "hardware": "x86-avx2", "speed": 1})
    config = SearchConfig("mobilenet", "x86-avx2", budgets={"latency": 2.0})
    assert SearchConfig.from_dict(config.to_dict()) == config


def test_resumed_sampler_gets_a_fresh_stream() -> None:
    assert session_seed(5, 0) == 5
    assert session_seed(5, 100) != session_seed(5, 0)
    assert session_seed(5, 100) == session_seed(5, 100)


def _records(run: RunDir, config: SearchConfig) -> list[tuple]:
    return [(t.number, t.state, t.params, t.values) for t in load_trials(run, config)]


TINY_SPACE = str(Path(__file__).with_name("optimize") / "tiny-bottleneck.yaml")


def test_same_seed_same_trials_under_another_processs_cpu_load(tmp_path: Path) -> None:
    """Nothing a search computes depends on wall-clock time: the MP-seeded search gives
    the same trials (parameters, values, constraints, metrics) on an idle machine and on
    one whose every core another process keeps busy."""
    config = SearchConfig(TINY_SPACE, "x86-avx2", strategy="mp+nsga2", trials=40,
                          population=10, budgets={"latency": 0.2})
    idle, loaded = RunDir(tmp_path / "idle"), RunDir(tmp_path / "loaded")
    run_search(config, idle)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(os.cpu_count() or 2)]
    try:
        run_search(config, loaded)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()

    def every_field(run: RunDir) -> list[tuple]:
        return [(t.number, t.state, t.params, t.values, t.constraints,
                 t.user_attrs.get("metrics")) for t in load_trials(run, config)]

    assert len(every_field(idle)) == 40
    assert every_field(idle) == every_field(loaded)


def test_search_records_constraints_spec_and_costs(tmp_path: Path) -> None:
    config = SearchConfig("mobilenet", "x86-avx2", strategy="nsga2", trials=30,
                          population=10, budgets={"latency": 3.0, "params": 3e6})
    run = RunDir(tmp_path / "run")
    result = run_search(config, run)
    assert result.done == 30
    trials = load_trials(run, config)
    for t in trials:
        assert set(t.constraints) == {"latency", "params"}
        metrics = t.user_attrs["metrics"]
        assert t.constraints["latency"] == pytest.approx(metrics["latency"] / 3.0 - 1)
        assert t.values == [metrics["score"], metrics["latency"]]
        assert t.user_attrs["spec"]["stages"]
    for name in ("config.yaml", "pareto.json", "pareto.csv", "pareto.png", "search.log"):
        assert (run / name).exists(), name


def test_same_seed_same_trials_and_resume_finishes_the_count(tmp_path: Path) -> None:
    config = SearchConfig("resnet-basic", "a100", strategy="tpe", trials=24, seed=1)
    a, b = RunDir(tmp_path / "a"), RunDir(tmp_path / "b")
    run_search(config, a)
    run_search(config, b)
    assert _records(a, config) == _records(b, config)
    more = SearchConfig("resnet-basic", "a100", strategy="tpe", trials=40, seed=1)
    with pytest.raises(RunError, match="--resume"):
        run_search(more, a)
    run_search(more, a, resume=True)
    records = _records(a, more)
    assert [r[0] for r in records] == list(range(40))
    assert records[:24] == _records(b, config)
    changed = SearchConfig("resnet-basic", "a100", strategy="nsga2", trials=50, seed=1)
    with pytest.raises(RunError, match="strategy"):
        run_search(changed, a, resume=True)


def test_impossible_budget_names_the_cheapest_network(tmp_path: Path) -> None:
    config = SearchConfig("resnet-basic", "x86-avx2", budgets={"latency": 0.01}, trials=5)
    with pytest.raises(InputError, match="cheapest network of the space needs"):
        run_search(config, RunDir(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_mp_seeded_search_reaches_the_requested_trials(tmp_path: Path) -> None:
    # Whatever the MP designer manages (designs or none), the search completes.
    config = SearchConfig("resnet-basic", "a100", strategy="mp+nsga2", trials=20,
                          population=10, budgets={"latency": 2.0})
    result = run_search(config, RunDir(tmp_path / "run"))
    assert result.done == 20


@pytest.mark.parametrize(("space", "what"), [("regnet", "outside"), (TINY_SPACE, "reused")])
def test_duplicates_come_from_the_study_and_infeasible_samples_are_not_trials(
        tmp_path: Path, space: str, what: str) -> None:
    from optuna.trial import TrialState

    from archdesign.evaluate import LocalEvaluator

    config = SearchConfig(space, "x86-avx2", strategy="nsga2", trials=120, population=20)
    result = run_search(config, RunDir(tmp_path / "run"))
    assert getattr(result, what) > 0
    assert result.evaluated + result.reused == result.done == 120
    trials = load_trials(RunDir(tmp_path / "run"), config)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 120
    local = LocalEvaluator(config.eval_config)
    fresh = local.evaluate([(t.number, t.params) for t in trials])
    assert [t.user_attrs["metrics"] for t in trials] == [e.metrics for e in fresh]
    assert len({_spec_key(t.user_attrs["spec"]) for t in trials}) == result.evaluated


def _spec_key(data: dict) -> str:
    import json

    return json.dumps(data, sort_keys=True)
