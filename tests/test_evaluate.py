from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from archdesign.cost import cost
from archdesign.evaluate import (
    Candidate,
    EvalConfig,
    Evaluation,
    LocalEvaluator,
    RayEvaluator,
    evaluate_chunk,
)
from archdesign.spaces import get_space

CONFIG = EvalConfig("mobilenet", "x86-avx2")


def _candidates(n: int, seed: int = 0) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    space = get_space("mobilenet")
    return [(i, space.sample(rng)) for i in range(n)]


def test_local_metrics_agree_with_the_library() -> None:
    from archdesign.hardware import get_profile, model_for
    from archdesign.objectives import effectiveness, get_objective

    evaluator = LocalEvaluator(CONFIG)
    profile = get_profile("x86-avx2")
    for result in evaluator.evaluate(_candidates(5)):
        assert result.ok
        spec = get_space("mobilenet").decode(result.params)
        c = cost(spec, 1, profile.precision)
        m = result.metrics
        assert (m["flops"], m["params"], m["activations"]) == (c.flops, c.params,
                                                              c.activations)
        assert m["memory"] == c.peak_activation_bytes + 4 * c.params
        assert m["score"] == get_objective("deepmad").score(spec)
        assert m["rho"] == effectiveness(spec)
        assert m["latency"] == pytest.approx(model_for(profile).predict(spec))
        assert result.spec == spec.to_dict()


def test_a_parameter_set_outside_the_space_is_an_error_result() -> None:
    evaluator = LocalEvaluator(EvalConfig("regnet", "x86-avx2"))
    space = evaluator.space
    bad = {**space.defaults(), "wa": space.parameter("wa").high, "depth": 1}
    results = evaluator.evaluate([(0, bad), (1, space.defaults())])
    assert [r.ok for r in results] == [False, True]
    assert "feasible" in (results[0].error or "") or "invalid" in (results[0].error or "")


def test_bad_names_are_input_errors() -> None:
    from archdesign.errors import InputError

    with pytest.raises(InputError, match="known spaces"):
        LocalEvaluator(EvalConfig("nope", "x86-avx2"))
    with pytest.raises(InputError, match="known profiles"):
        LocalEvaluator(EvalConfig("mobilenet", "nope"))


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             resources={"archdesign_timer": 1})
    # Test helpers are sent to workers by value (workers cannot import this test module).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


def test_ray_gives_the_local_results(ray_session) -> None:
    candidates = _candidates(70)
    local = LocalEvaluator(CONFIG).evaluate(candidates)
    with RayEvaluator(CONFIG, workers=2, min_chunk=8) as remote:
        assert remote.evaluate(candidates) == local
    assert ray_session.is_initialized()  # a session it did not start is left running


def _recording_chunks(folder: str):
    def evaluate(config: EvalConfig, chunk: list[Candidate]) -> list[Evaluation]:
        Path(folder, str(chunk[0][0])).write_text(str(len(chunk)))
        return evaluate_chunk(config, chunk)

    return evaluate


@pytest.mark.parametrize(("count", "sizes"), [(3, {"0": "2", "2": "1"}),
                                              (20, {"0": "10", "10": "10"}),
                                              (100, {"0": "25", "25": "25", "50": "25",
                                                     "75": "25"})])
def test_chunks_spread_over_every_worker(ray_session, tmp_path: Path, count: int,
                                         sizes: dict[str, str]) -> None:
    """Chunks of min_chunk (16) or more, but a short batch still uses both workers."""
    candidates = _candidates(count)
    with RayEvaluator(CONFIG, workers=2, evaluate_fn=_recording_chunks(str(tmp_path))) as ev:
        assert ev.evaluate(candidates) == LocalEvaluator(CONFIG).evaluate(candidates)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == sizes


def _crash_once(marker: str):
    def evaluate(config: EvalConfig, chunk: list[Candidate]) -> list[Evaluation]:
        # The first chunk to reach a worker kills that worker process outright.
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return evaluate_chunk(config, chunk)
        os.close(fd)
        os._exit(1)

    return evaluate


def test_a_dead_workers_chunk_is_redone(ray_session, tmp_path: Path) -> None:
    candidates = _candidates(40)
    marker = str(tmp_path / "crashed")
    with RayEvaluator(CONFIG, workers=2, min_chunk=10,
                      evaluate_fn=_crash_once(marker)) as remote:
        results = remote.evaluate(candidates)
    assert Path(marker).exists()
    assert results == LocalEvaluator(CONFIG).evaluate(candidates)


def test_search_with_two_ray_workers_equals_in_process(ray_session, tmp_path: Path) -> None:
    from archdesign.report import load_trials
    from archdesign.runs import RunDir
    from archdesign.search import SearchConfig, run_search

    config = SearchConfig("mobilenet", "x86-avx2", strategy="nsga2", trials=60,
                          population=12, budgets={"latency": 4.0}, seed=3)
    runs = {}
    for workers in (1, 2):
        run = RunDir(tmp_path / f"w{workers}")
        run_search(config, run, workers=workers)
        runs[workers] = [(t.number, t.params, t.values, t.user_attrs.get("metrics"))
                         for t in load_trials(run, config)]
    assert len(runs[1]) == 60
    assert runs[1] == runs[2]


def test_measured_latency_in_a_timer_actor(ray_session) -> None:
    from archdesign.evaluate import MeasureConfig, measure_on_ray
    from archdesign.spec import ArchSpec, StageSpec

    tiny = ArchSpec(stages=(StageSpec("basic", 8, 1, stride=2),), resolution=32)
    (timing,) = measure_on_ray([tiny], MeasureConfig(repeats=3))
    assert timing["latency_ms"] > 0
