from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archdesign.report import front_plot, load_run, plot_front
from archdesign.runs import RunDir
from archdesign.search import SearchConfig, format_metric, run_search


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "run"
    run_search(SearchConfig("mobilenet", "x86-avx2", strategy="nsga2", population=10,
                            trials=40, budgets={"latency": 4.0}), RunDir(path))
    return path


def test_the_plot_counts_the_tables_front(run_dir: Path) -> None:
    summary = load_run(run_dir)
    plot = front_plot(summary)
    series = {s.kind: s for s in plot.series}
    front = series["front"]
    assert len(front.x) == len(summary.front) > 0
    assert front.label == f"Pareto front ({len(summary.front)})"
    assert sorted(front.y.tolist()) == sorted(e.metrics["score"] for e in summary.front)
    counted = sum(len(s.x) for s in plot.series)
    assert counted == summary.done - summary.failed  # every complete trial, once
    assert len(series["faint"].x) == counted - summary.feasible


def test_titles_carry_units_and_the_latency_axis_is_log_in_both(run_dir: Path,
                                                                tmp_path: Path) -> None:
    summary = load_run(run_dir)
    plot = front_plot(summary)
    assert plot.log_x and plot.x_budget == 4.0 and plot.budget_label == "latency <= 4 ms"
    assert plot.title.startswith("score vs latency (latency in ms): mobilenet on x86-avx2")
    assert "latency <= 4 ms" in plot.title
    assert plot.x_label == "latency (ms), lower is better"
    plot_front(summary, tmp_path / "f.html")
    html = (tmp_path / "f.html").read_text()
    assert '"xaxis":{"title":{"text":"latency (ms), lower is better"},"type":"log"}' in html
    plot_front(summary, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_hover_says_trial_score_latency_flops_params(run_dir: Path, tmp_path: Path) -> None:
    summary = load_run(run_dir)
    plot_front(summary, tmp_path / "f.html")
    html = (tmp_path / "f.html").read_text()
    hovers = [text for found in re.findall(r'"text":(\[.*?\])', html)
              for text in json.loads(found)]
    assert len(hovers) == summary.done - summary.failed
    by_trial = {h.split("<br>")[0]: h.split("<br>")[1:] for h in hovers}
    for e in summary.front:
        m = e.metrics
        score, *rest = by_trial[f"trial {e.trial}"]
        assert score.startswith("score ")
        assert float(score.split()[1]) == pytest.approx(m["score"], rel=5e-4)
        assert rest == [f"latency {format_metric('latency', m['latency'])}",
                        f"flops {format_metric('flops', m['flops'])}",
                        f"params {format_metric('params', m['params'])}"]
    # scores that differ look different
    scores = {float(v[0].split()[1]): v[0] for v in by_trial.values()}
    assert len(set(scores.values())) == len(scores)


def test_one_objective_plots_by_trial(tmp_path: Path) -> None:
    path = tmp_path / "one"
    run_search(SearchConfig("mobilenet", "x86-avx2", objectives=("score",), strategy="random",
                            trials=12), RunDir(path))
    plot = front_plot(load_run(path))
    assert plot.x_label == "trial" and not plot.log_x
    assert plot.title.startswith("score vs trial: mobilenet on x86-avx2")
