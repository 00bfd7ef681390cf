from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from archdesign.cost import cost
from archdesign.errors import InputError
from archdesign.export import export_from_run, export_onnx, parse_conditions
from archdesign.runs import RunDir
from archdesign.search import SearchConfig, run_search
from archdesign.spec import COUNTING_CONVENTIONS, ArchSpec, StageSpec, load_spec


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "run"
    config = SearchConfig("mobilenet", "x86-avx2", strategy="random", trials=40,
                          budgets={"latency": 10.0}, seed=2)
    run_search(config, RunDir(path))
    return path


def _front(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "pareto.json").read_text())["front"]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_exported_spec_recounts_to_the_same_figures(run_dir: Path, tmp_path: Path,
                                                    fmt: str) -> None:
    entry = _front(run_dir)[0]
    out = tmp_path / f"design.{fmt}"
    result = export_from_run(run_dir, fmt, out, trial=entry["trial"])
    data = json.loads(out.read_text()) if fmt == "json" else yaml.safe_load(out.read_text())
    assert data["counting_conventions"] == COUNTING_CONVENTIONS
    assert data["provenance"]["space"] == "mobilenet"
    assert data["provenance"]["strategy"] == "random"
    assert data["provenance"]["seed"] == 2
    assert data["provenance"]["archdesign_version"]
    assert data["hardware"]["name"] == "x86-avx2"
    spec = load_spec(out)
    assert spec == result.spec
    c = cost(spec, 1, "float32")
    for name in ("flops", "params", "activations", "peak_activation_bytes", "bytes_moved"):
        assert data["metrics"][name] == getattr(c, name)


def test_best_under_picks_the_best_fitting_score(run_dir: Path, tmp_path: Path) -> None:
    front = _front(run_dir)
    limit = sorted(e["metrics"]["latency"] for e in front)[len(front) // 2]
    result = export_from_run(run_dir, "json", tmp_path / "d.json",
                             conditions=parse_conditions(f"latency={limit}ms"))
    fitting = [e for e in front if e["metrics"]["latency"] <= limit]
    assert result.metrics["score"] == max(e["metrics"]["score"] for e in fitting)
    with pytest.raises(InputError, match="no feasible trial"):
        export_from_run(run_dir, "json", tmp_path / "x.json",
                        conditions=parse_conditions("latency=1us"))


def test_onnx_and_torchscript_exports_run(run_dir: Path, tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    trial = _front(run_dir)[-1]["trial"]
    result = export_from_run(run_dir, "onnx", tmp_path / "net.onnx", trial=trial)
    assert result.onnx_check is not None and result.onnx_check.relative_diff < 1e-4
    session = ort.InferenceSession(str(tmp_path / "net.onnx"))
    r = result.spec.resolution
    out = session.run(None, {"input": np.zeros((2, 3, r, r), np.float32)})[0]
    assert out.shape == (2, 1000)  # dynamic batch
    export_from_run(run_dir, "torch", tmp_path / "net.pt", trial=trial)
    module = torch.jit.load(str(tmp_path / "net.pt"))
    assert module(torch.zeros(1, 3, r, r)).shape == (1, 1000)


def test_onnx_matches_pytorch_for_a_trained_looking_network(tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    from archdesign.build import build

    spec = ArchSpec(stages=(StageSpec("bottleneck", 32, 2, stride=2, expansion=0.5,
                                      group_width=8, se_ratio=0.25),), resolution=64)
    export_onnx(spec, tmp_path / "b.onnx")
    # Same weights in both runtimes: load the ONNX initializers' source module again.
    model = build(spec).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.onnx.export(model, (x,), str(tmp_path / "c.onnx"), dynamo=False,
                      input_names=["input"])
    got = ort.InferenceSession(str(tmp_path / "c.onnx")).run(None, {"input": x.numpy()})[0]
    want = model(x).detach().numpy()
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_bad_export_requests(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="exactly one"):
        export_from_run(run_dir, "json", tmp_path / "a.json")
    with pytest.raises(InputError, match="not in the run"):
        export_from_run(run_dir, "json", tmp_path / "a.json", trial=10**6)
    with pytest.raises(InputError, match="does not exist"):
        export_from_run(run_dir, "json", tmp_path / "no" / "a.json", trial=0)
    with pytest.raises(InputError, match="not a search run"):
        export_from_run(tmp_path, "json", tmp_path / "a.json", trial=0)
    assert not (tmp_path / "a.json").exists()
