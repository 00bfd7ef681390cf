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


# -- plain PyTorch source ------------------------------------------------------------------

_SOURCE_SPECS = {
    "basic": ArchSpec(stages=(StageSpec("basic", 16, 3), StageSpec("basic", 32, 2, stride=2)),
                      resolution=32),
    "bottleneck_grouped_se": ArchSpec(stages=(
        StageSpec("bottleneck", 32, 2, stride=2, expansion=0.5, group_width=8,
                  se_ratio=0.25),), resolution=32),
    "inverted_residual_se_hswish": ArchSpec(stages=(
        StageSpec("inverted_residual", 16, 1, expansion=1.0),
        StageSpec("inverted_residual", 24, 3, stride=2, kernel=5, expansion=4.0,
                  se_ratio=0.25, se_style="mobilenetv3", activation="hswish"),),
        resolution=32),
    "irf_grouped_shuffle": ArchSpec(stages=(
        StageSpec("irf", 16, 2, expansion=1.0, pointwise_groups=2),
        StageSpec("irf", 32, 2, stride=2, expansion=3.0),), resolution=32),
    "convnext": ArchSpec(stages=(StageSpec("convnext", 24, 2, kernel=7, expansion=4.0,
                                           activation="gelu"),
                                 StageSpec("convnext", 48, 2, stride=2, kernel=7,
                                           expansion=4.0, activation="gelu")),
                         resolution=32),
    "skip": ArchSpec(stages=(StageSpec("inverted_residual", 16, 1),
                             StageSpec("skip", 16, 2), StageSpec("skip", 24, 1, stride=2)),
                     resolution=32),
}


@pytest.mark.parametrize("kind", sorted(_SOURCE_SPECS))
def test_python_source_equals_build(kind: str, tmp_path: Path) -> None:
    """The exported file imports no archdesign, and under the same seed it holds the same
    parameters and computes the same outputs as build(spec)."""
    import ast

    import torch

    from archdesign.build import build
    from archdesign.export_py import export_python, load_source

    spec = _SOURCE_SPECS[kind]
    path = tmp_path / "net.py"
    check = export_python(spec, path)
    source = path.read_text()
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported == {"torch", "collections"}
    torch.manual_seed(7)
    reference = build(spec).eval()
    torch.manual_seed(7)
    exported = load_source(source).Network().eval()
    params = sum(p.numel() for p in exported.parameters())
    assert params == sum(p.numel() for p in reference.parameters()) == cost(spec).params
    assert check is not None and check.params == params
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(exported(x), reference(x))
    assert exported(x).shape == (2, 1000)


def test_python_source_runs_without_archdesign(tmp_path: Path) -> None:
    import subprocess
    import sys

    from archdesign.export_py import export_python

    path = tmp_path / "net.py"
    export_python(_SOURCE_SPECS["inverted_residual_se_hswish"], path)
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__'); "
             "assert not [m for m in sys.modules if m.startswith('archdesign')]")
    result = subprocess.run([sys.executable, "-I", "-c", probe, str(path)], cwd=tmp_path,
                            capture_output=True, text=True, check=True)
    params = cost(_SOURCE_SPECS["inverted_residual_se_hswish"]).params
    assert result.stdout.strip() == f"{params:,} parameters, output (1, 1000)"


def test_python_source_shares_identical_blocks() -> None:
    from archdesign.export_py import python_source

    source = python_source(_SOURCE_SPECS["basic"])
    # s1.b0 takes the stem's 32 channels to 16; s1.b1 and s1.b2 are identical (16 -> 16)
    assert source.count("class Basic") == 4
    assert '"s1": _stage(Basic1(), Basic2(), Basic2())' in source
    assert '"s2": _stage(Basic3(), Basic4())' in source
    assert '"""A basic block, 16 -> 16 channels, stride 1 (s1.b1-b2)"""' in source
    assert "shortcut = self.proj(x)" in source and "out = out + shortcut" in source


@pytest.mark.parametrize(("out", "fmt"), [("d.json", "json"), ("d.yml", "yaml"),
                                          ("n.onnx", "onnx"), ("n.pth", "torch"),
                                          ("n.py", "py")])
def test_format_is_inferred_from_the_suffix(out: str, fmt: str) -> None:
    from archdesign.export import format_for

    assert format_for(out) == fmt


def test_an_unknown_suffix_names_the_known_ones(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot tell the format.*\.py \(py\)"):
        export_from_run(run_dir, None, tmp_path / "net.txt", trial=0)
    assert not (tmp_path / "net.txt").exists()


def test_num_classes_and_resolution_at_export(run_dir: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    from archdesign.evaluate import EvalConfig, LocalEvaluator
    from archdesign.export_py import load_source

    trial = _front(run_dir)[0]["trial"]
    result = export_from_run(run_dir, None, tmp_path / "d.json", trial=trial, num_classes=10,
                             resolution=128)
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["spec"]["head"]["num_classes"] == 10 and data["spec"]["resolution"] == 128
    assert data["provenance"]["overrides"] == {"num_classes": 10, "resolution": 128}
    spec = load_spec(tmp_path / "d.json")
    assert data["metrics"]["flops"] == cost(spec).flops
    want = LocalEvaluator(EvalConfig("mobilenet", "x86-avx2")).metrics([spec])[0]
    assert data["metrics"]["latency"] == want["latency"]
    assert result.metrics == data["metrics"]
    export_from_run(run_dir, None, tmp_path / "n.onnx", trial=trial, num_classes=10,
                    resolution=128)
    session = ort.InferenceSession(str(tmp_path / "n.onnx"))
    out = session.run(None, {"input": np.zeros((1, 3, 128, 128), np.float32)})[0]
    assert out.shape == (1, 10)
    export_from_run(run_dir, None, tmp_path / "n.py", trial=trial, num_classes=10)
    module = load_source((tmp_path / "n.py").read_text())
    original = ArchSpec.from_dict(_front(run_dir)[0]["spec"])
    written = {"classes": module.NUM_CLASSES, "resolution": module.RESOLUTION}
    assert written == {"classes": 10, "resolution": original.resolution}
    with pytest.raises(InputError, match="num_classes"):
        export_from_run(run_dir, None, tmp_path / "x.py", trial=trial, num_classes=10**7)


@pytest.mark.parametrize("arch", ["mobilenet_v3_small@64", "regnety_200mf@64",
                                  "efficientnet_b0@64", "resnext50_32x4d@64"])
def test_python_source_of_published_networks(arch: str) -> None:
    """Zoo networks (hard-swish and MobileNetV3 SE, grouped bottlenecks with SE, per-block
    fields) through the export's own check: same parameters, same outputs."""
    from archdesign.export_py import check_source, python_source
    from archdesign.zoo import get_arch

    spec = get_arch(arch)
    check = check_source(spec, python_source(spec))
    assert check.params == cost(spec).params and check.max_abs_diff == 0.0
