from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest

from archdesign.errors import InputError
from archdesign.report import load_trials
from archdesign.runs import RunDir, RunError
from archdesign.search import (
    FRAME_FILE,
    SearchConfig,
    make_frame,
    run_frame,
    run_search,
    session_seed,
    space_extent,
)


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


TINY_SPACE = str(Path(__file__).parents[1] / "optimize" / "tiny-bottleneck.yaml")


@contextmanager
def _busy(how: str) -> Iterator[None]:
    """Every core kept busy by other processes, or this process's GIL by a spinning thread."""
    if how == "processes":
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                   for _ in range(os.cpu_count() or 2)]
        try:
            yield
        finally:
            for burner in burners:
                burner.kill()
                burner.wait()
        return
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize("load", ["processes", "thread"])
def test_same_seed_same_trials_under_another_load(tmp_path: Path, load: str) -> None:
    """Nothing a search computes depends on wall-clock time: the MP-seeded search gives
    the same trials (parameters, values, constraints, metrics, networks) on an idle
    machine and on one whose every core other processes keep busy, or whose driver
    shares its interpreter with a spinning thread."""
    config = SearchConfig(TINY_SPACE, "x86-avx2", strategy="mp+nsga2", trials=40,
                          population=10, budgets={"latency": 0.2})
    idle, loaded = RunDir(tmp_path / "idle"), RunDir(tmp_path / "loaded")
    run_search(config, idle)
    with _busy(load):
        run_search(config, loaded)

    def every_field(run: RunDir) -> list[tuple]:
        return [(t.number, t.state, t.params, t.values, t.constraints,
                 t.user_attrs.get("metrics"), t.user_attrs.get("spec"))
                for t in load_trials(run, config)]

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


def test_the_study_names_its_metrics_and_the_run_keeps_its_frame(tmp_path: Path) -> None:
    """optuna-dashboard labels the objectives; readers take the frame the run stored,
    not one recomputed by the code that reads it."""
    from archdesign.evaluate import LocalEvaluator

    config = SearchConfig(TINY_SPACE, "x86-avx2", strategy="random", trials=10,
                          objectives=("score", "latency", "params"))
    run = RunDir(tmp_path / "run")
    run_search(config, run)
    study = optuna.load_study(study_name="archdesign", storage=run.read_storage(None))
    assert study.metric_names == ["score", "latency", "params"]
    expected = make_frame(config, space_extent(LocalEvaluator(config.eval_config), 0))
    assert run_frame(run, config) == expected
    stored = (run / FRAME_FILE).read_text()
    (run / FRAME_FILE).write_text(stored.replace(str(expected.reference[2]), "1e12"))
    assert run_frame(run, config).reference[2] == 1e12
    resumed = SearchConfig(**{**config.to_dict(), "trials": 12})
    run_search(resumed, run, resume=True)
    assert run_frame(run, config).reference[2] == 1e12  # a resume keeps the run's frame
    (run / FRAME_FILE).write_text("{")
    with pytest.raises(RunError, match=r"frame\.json: not valid JSON"):
        run_frame(run, config)


def test_reports_do_not_import_the_search() -> None:
    """The search writes reports; the reports know metrics and fronts, not the search."""
    code = ("import sys, archdesign.report, archdesign.metrics, archdesign.pareto; "
            "print(sorted(m for m in sys.modules if m.startswith('archdesign.search')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "[]"
