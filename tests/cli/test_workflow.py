"""``archdesign runs``, ``compare`` and ``search --config`` end to end, on small real
searches; every table at 80 columns."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from archdesign.cli import main
from archdesign.metrics import METRICS, format_metric
from archdesign.pareto import hypervolume, pareto_mask, to_minimized


def _run(*args: str, columns: int = 80) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": str(columns)})
    return result.exit_code, result.output


_SEARCH = ["search", "--space", "mobilenet", "--hardware", "x86-avx2", "--trials", "30"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished 30-trial searches: NSGA-II under 4 ms, random search under 6 ms."""
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("nsga2", ["--latency", "4ms", "--strategy", "nsga2",
                                   "--population", "10"]),
                        ("random", ["--latency", "6ms", "--strategy", "random", "--seed",
                                    "1"])):
        code, out = _run(*_SEARCH, *extra, "--run-dir", str(root / name))
        assert code == 0, out
    return root


def _results(run: Path) -> dict:
    return json.loads((run / "pareto.json").read_text())


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_runs_lists_every_run_as_its_results_say(runs: Path) -> None:
    before = _snapshot(runs)
    code, out = _run("runs", str(runs), "--json")
    assert code == 0, out
    listed = {Path(r["path"]).name: r for r in json.loads(out)["runs"]}
    assert set(listed) == {"nsga2", "random"}
    for name, strategy in (("nsga2", "nsga2"), ("random", "random")):
        r, results = listed[name], _results(runs / name)
        assert (r["space"], r["hardware"], r["strategy"]) == ("mobilenet", "x86-avx2",
                                                              strategy)
        assert r["trials"] == r["target"] == 30
        assert r["feasible"] == results["feasible"]
        assert r["front"] == len(results["front"]) > 0
        assert r["hypervolume"] == results["hypervolume"]
        assert r["started"].startswith("20") and r["problem"] is None
    code, out = _run("runs", str(runs), columns=200)
    assert code == 0, out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("run "))
    assert header.split() == ["run", "space", "hardware", "strategy", "trials", "feasible",
                              "front", "hv", "started", "(UTC)"]
    row = next(line for line in lines if line.startswith("nsga2 "))
    results = _results(runs / "nsga2")
    assert row.split()[:8] == ["nsga2", "mobilenet", "x86-avx2", "nsga2", "30",
                               str(results["feasible"]), str(len(results["front"])),
                               f"{results['hypervolume']:.4f}"]
    assert _snapshot(runs) == before  # read only


def test_runs_reports_a_damaged_run_and_refuses_a_missing_directory(runs: Path,
                                                                    tmp_path: Path) -> None:
    shutil.copytree(runs / "nsga2", tmp_path / "ok")
    shutil.copytree(runs / "nsga2", tmp_path / "damaged")
    (tmp_path / "damaged" / "config.yaml").write_text("search: [unclosed\n")
    (tmp_path / "damaged" / "pareto.json").unlink()
    code, out = _run("runs", str(tmp_path), "--json")
    assert code == 0, out
    listed = {Path(r["path"]).name: r for r in json.loads(out)["runs"]}
    assert listed["ok"]["problem"] is None and listed["ok"]["trials"] == 30
    assert "config.yaml" in listed["damaged"]["problem"]
    code, out = _run("runs", str(tmp_path), columns=300)
    assert code == 0 and f"{tmp_path / 'damaged' / 'config.yaml'}: " in out
    code, out = _run("runs", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere: does not exist" in " ".join(out.split())


def test_compare_measures_every_run_on_the_common_frame(runs: Path, tmp_path: Path) -> None:
    a, b = runs / "nsga2", runs / "random"
    code, out = _run("compare", str(a), str(b), "--json")
    assert code == 0, out
    data = json.loads(out)
    own = [r["own_frame"] for r in data["runs"]]
    assert data["frame"]["ideal"] == np.minimum(own[0]["ideal"], own[1]["ideal"]).tolist()
    assert data["frame"]["reference"] == np.maximum(own[0]["reference"],
                                                    own[1]["reference"]).tolist()
    assert data["frame"]["reference"][1] == 6.0  # the looser of the two latency budgets
    from archdesign.pareto import Frame

    frame = Frame(tuple(data["frame"]["ideal"]), tuple(data["frame"]["reference"]))
    fronts = []
    for run, entry in zip((a, b), data["runs"], strict=True):
        front = np.array([[e["metrics"]["score"], e["metrics"]["latency"]]
                          for e in _results(run)["front"]])
        fronts.append(to_minimized(front, [METRICS["score"].maximize, False]))
        assert entry["hypervolume"] == pytest.approx(hypervolume(fronts[-1], frame))
        assert entry["own_hypervolume"] == _results(run)["hypervolume"]
    joint = pareto_mask(np.vstack(fronts))
    assert [e["on_joint_front"] for e in data["runs"]] == [int(joint[:len(fronts[0])].sum()),
                                                           int(joint[len(fronts[0]):].sum())]
    code, out = _run("compare", str(a), str(b), "--plot", str(tmp_path / "c.html"))
    assert code == 0, out
    text = " ".join(out.split())
    assert "common frame (the union of the runs' own frames)" in text
    assert "latency from" in text and "to 6 ms (reference)" in text
    html = (tmp_path / "c.html").read_text()
    assert '"type":"log"' in html
    hovers = [text for found in re.findall(r'"text":(\[.*?\])', html)
              for text in json.loads(found)]
    by_point = {tuple(h.split("<br>")[:2]): h.split("<br>")[2:] for h in hovers}
    assert len(by_point) == sum(len(_results(run)["front"]) for run in (a, b))
    for run in (a, b):
        for e in _results(run)["front"]:
            m = e["metrics"]
            score, *rest = by_point[(str(run), f"trial {e['trial']}")]
            assert float(score.removeprefix("score ")) == pytest.approx(m["score"], rel=5e-4)
            assert rest == [f"latency {format_metric('latency', m['latency'])}",
                            f"flops {format_metric('flops', m['flops'])}",
                            f"params {format_metric('params', m['params'])}"]
    code, out = _run("compare", str(a), str(b), "--plot", str(tmp_path / "c.png"))
    assert code == 0 and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_refuses_runs_of_other_objectives(runs: Path, tmp_path: Path) -> None:
    other = tmp_path / "flops"
    code, out = _run("search", "--space", "mobilenet", "--hardware", "x86-avx2", "--trials",
                     "12", "--strategy", "random", "--objectives", "score,flops",
                     "--run-dir", str(other))
    assert code == 0, out
    code, out = _run("compare", str(runs / "nsga2"), str(other))
    assert code == 2 and "objectives ['score', 'flops'] differ" in " ".join(out.split())
    code, out = _run("compare", str(runs / "nsga2"))
    assert code == 2 and "two or more runs" in out
    assert not list(tmp_path.glob("*.png"))


def test_search_config_file_with_command_line_overrides(runs: Path, tmp_path: Path) -> None:
    config = tmp_path / "search.yaml"
    run = tmp_path / "from-file"
    config.write_text(yaml.safe_dump({
        "space": "mobilenet", "hardware": "x86-avx2", "strategy": "nsga2", "population": 10,
        "trials": 20, "budgets": {"latency": "4ms"}, "run_dir": str(run)}))
    code, out = _run("search", "--config", str(config), "--trials", "30")
    assert code == 0, out
    kept = yaml.safe_load((run / "config.yaml").read_text())["search"]
    assert kept["trials"] == 30  # the command line wins
    assert kept["budgets"] == {"latency": 4.0} and kept["population"] == 10
    # the file and options say what the nsga2 fixture run's options said: the same search
    assert kept == yaml.safe_load((runs / "nsga2" / "config.yaml").read_text())["search"]
    assert _results(run)["front"] == _results(runs / "nsga2")["front"]
    # a run's own config.yaml is a config file: it repeats the run
    again = tmp_path / "again"
    code, out = _run("search", "--config", str(run / "config.yaml"), "--run-dir", str(again))
    assert code == 0, out
    assert _results(again)["front"] == _results(run)["front"]


@pytest.mark.parametrize(("content", "expected"), [
    ("space: mobilenet\nhardware: x86-avx2\nlatency: 4ms\n",
     "unknown key 'latency' (budgets go under budgets:"),
    ("space: mobilenet\nhardware: x86-avx2\nworkerz: 2\n", "unknown key 'workerz'"),
    ("space: mobilenet\nhardware: x86-avx2\ntrials: many\n",
     "trials: expected an integer >= 1, got 'many'"),
    ("space: mobilenet\nhardware: x86-avx2\nbudgets: {speed: 4}\n",
     "budgets: unknown budget 'speed'"),
    ("space: mobilenet\nhardware: x86-avx2\nbudgets: {latency: fast}\n",
     "budgets: --latency: expected a number with an optional unit (ms, s, us, µs, ns), got 'fast'"),
    ("space: mobilenet\nhardware: x86-avx2\nstrategy: anneal\n", "--strategy"),
    ("- space\n", "expected a mapping of search options"),
    ("hardware: x86-avx2\n", "does not set space"),
])
def test_a_bad_config_file_names_file_and_key(tmp_path: Path, content: str,
                                              expected: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    code, out = _run("search", "--config", str(config), "--run-dir", str(tmp_path / "run"))
    text = " ".join(out.split())
    assert code == 2, out
    assert "bad.yaml" in text and expected in text
    if "unknown key" in expected:
        assert "allowed keys: space, hardware, objectives, budgets" in text
        assert "workers, ray_address, run_dir, resume" in text
    assert "Traceback" not in out and not (tmp_path / "run").exists()


def _tables(runs: Path) -> list[list[str]]:
    return [["pareto", str(runs / "nsga2")], ["runs", str(runs)],
            ["compare", str(runs / "nsga2"), str(runs / "random")], ["spaces"],
            ["spaces", "show", "ofa-mbv3"], ["hardware"], ["hardware", "show", "a100"],
            ["cost", "--arch", "resnet50", "--per-layer"], ["score", "--arch", "resnet50"]]


@pytest.mark.parametrize("columns", [80, 60])
def test_every_table_fits_the_terminal_whole(runs: Path, columns: int) -> None:
    for args in _tables(runs):
        code, out = _run(*args, columns=columns)
        assert code == 0, (args, out)
        long = [line for line in out.splitlines() if len(line) > columns]
        assert not long, (args, long)
        assert "…" not in out, args


def test_front_numbers_and_names_are_whole_in_a_narrow_terminal(runs: Path) -> None:
    results = _results(runs / "nsga2")
    code, out = _run("pareto", str(runs / "nsga2"), columns=50)
    assert code == 0, out
    cells = [line.split() for line in out.splitlines()]
    rows = [c for c in cells if c and c[0].isdigit()]
    assert len(rows) == len(results["front"])
    for cell, e in zip(rows, results["front"], strict=True):
        assert cell[:2] == [str(e["rank"]), str(e["trial"])]
        assert " ".join(cell[3:5]) == format_metric("latency", e["metrics"]["latency"])
    assert "left out to fit 50 columns" in " ".join(out.split())
    code, out = _run("hardware", columns=50)
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"xeon-gold-6226", "xeon-silver-4210r", "essential-ph1"} <= names
