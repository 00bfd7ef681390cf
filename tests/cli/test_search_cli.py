from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from archdesign.cli import main


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_search_pareto_export_end_to_end(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out = _run("search", "--space", "resnet-basic", "--hardware", "a100", "--latency",
                     "2ms", "--strategy", "nsga2", "--population", "10", "--trials", "40",
                     "--run-dir", str(run))
    assert code == 0, out
    assert "Pareto front" in out
    code, out = _run("pareto", str(run), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["trials"] == 40 and data["front"]
    assert 0 < data["hypervolume"] <= 1
    for plot in ("front.png", "front.html"):
        code, out = _run("pareto", str(run), "--plot", str(tmp_path / plot))
        assert code == 0, out
        assert (tmp_path / plot).stat().st_size > 0
    code, out = _run("export", str(run), "--best-under", "latency=2ms", "--format", "yaml",
                     "--out", str(tmp_path / "net.yaml"))
    assert code == 0, out
    code, out = _run("cost", str(tmp_path / "net.yaml"), "--json")
    assert code == 0, out
    (csv_header, *_rows) = (run / "pareto.csv").read_text().splitlines()
    assert csv_header.startswith("rank,trial,score,latency_ms")


def test_build_onnx_for_any_spec(tmp_path: Path) -> None:
    code, out = _run("build", "--arch", "resnet18", "--onnx", str(tmp_path / "r18.onnx"))
    assert code == 0, out
    assert (tmp_path / "r18.onnx").stat().st_size > 10_000_000


@pytest.mark.parametrize(("args", "message"), [
    (["--space", "nope", "--hardware", "a100"], "known spaces"),
    (["--space", "mobilenet", "--hardware", "nope"], "known profiles"),
    (["--space", "resnet-basic", "--hardware", "rpi4", "--latency", "0.01ms"],
     "cheapest network"),
    (["--space", "mobilenet", "--hardware", "a100", "--latency", "fast"], "--latency"),
    (["--space", "mobilenet", "--hardware", "a100", "--objectives", "score,accuracy"],
     "accuracy"),
    (["--hardware", "a100"], "--space is required"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, args: list[str],
                                              message: str) -> None:
    run = tmp_path / "run"
    code, out = _run("search", *args, "--trials", "5", "--run-dir", str(run))
    assert code == 2, out
    assert message in out.replace("\n", " ")
    assert not run.exists()


def test_malformed_space_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: staged\nstages: [{width: {min: 8, max: 4}\n")
    code, out = _run("search", "--space", str(bad), "--hardware", "a100", "--run-dir",
                     str(tmp_path / "run"))
    assert code == 2, out
    assert "bad.yaml" in out
    assert not (tmp_path / "run").exists()


def test_run_directory_misuse_exits_2(tmp_path: Path) -> None:
    code, out = _run("search", "--run-dir", str(tmp_path / "none"), "--resume")
    assert code == 2 and "not a search run" in out.replace("\n", " ")
    code, out = _run("pareto", str(tmp_path))
    assert code == 2
    code, out = _run("export", str(tmp_path), "--trial", "0", "--format", "json", "--out",
                     str(tmp_path / "x.json"))
    assert code == 2
    assert not (tmp_path / "x.json").exists()


def test_rho_budget_is_stated_enforced_and_shown(tmp_path: Path) -> None:
    common = ["search", "--space", "resnet-basic", "--hardware", "a100", "--strategy",
              "nsga2", "--population", "10", "--trials", "30"]
    code, out = _run(*common, "--run-dir", str(tmp_path / "free"))
    assert code == 0, out
    assert "(no rho budget)" in out
    code, out = _run(*common, "--rho", "0.5", "--run-dir", str(tmp_path / "rho"))
    assert code == 0, out
    assert "rho <= 0.5" in out and "no rho budget" not in out
    assert "rho" in out.split("Pareto front")[1]  # a column of the front table
    front = json.loads((tmp_path / "rho" / "pareto.json").read_text())["front"]
    assert front and all(0 < e["metrics"]["rho"] <= 0.5 for e in front)
    code, out = _run(*common, "--rho", "1e-3", "--run-dir", str(tmp_path / "none"))
    assert code == 2 and "--rho" in out and "cheapest network" in " ".join(out.split())
