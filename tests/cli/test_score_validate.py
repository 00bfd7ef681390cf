"""``archdesign score --validate`` and ``--fit`` end to end, on the pycls file and a
space-point file of a user's own."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from archdesign.cli import main
from archdesign.objectives import get_objective

PYCLS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "accuracy" / \
    "pycls_imagenet_top1.csv"
ANALYTIC = ("--objective", "flops", "--objective", "params", "--objective", "deepmad")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.skipif(not PYCLS.is_file(), reason="the shared pycls accuracy file is absent")
def test_validate_the_pycls_zoo_json_and_table() -> None:
    code, text = run("score", "--validate", str(PYCLS), "--column", "top1_err",
                     "--lower-is-better", *ANALYTIC, "--json")
    assert code == 0, text
    rows = {r["objective"]: r for r in json.loads(text)["objectives"]}
    assert set(rows) == {"flops", "params", "deepmad"}
    assert rows["flops"]["n"] == 36
    assert rows["flops"]["kendall_tau"] > 0.5  # bigger pycls networks are more accurate
    code, text = run("score", "--validate", str(PYCLS), "--column", "top1_err",
                     "--lower-is-better", *ANALYTIC)
    assert code == 0, text
    assert "tau" in text and "deepmad" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def macro_file(tmp_path: Path) -> Path:
    """A user's file: 12 space points with an accuracy that grows with size (made up)."""
    from archdesign.cost import cost
    from archdesign.spaces import get_space

    space = get_space("nas-bench-macro")
    rng = np.random.default_rng(0)
    choices = ["id", "ir_3x3_t3", "ir_5x5_t6"]
    lines = ["space," + ",".join(f"l{i}" for i in range(8)) + ",accuracy"]
    for _ in range(12):
        point = [choices[int(rng.integers(3))] for _ in range(8)]
        params = cost(space.spec({f"l{i}": v for i, v in enumerate(point)})).params
        accuracy = 80 + 2 * math.log(params) + 0.1 * rng.normal()
        lines.append("nas-bench-macro," + ",".join(point) + f",{accuracy:.3f}")
    path = tmp_path / "trained.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_a_user_file_then_use_it_as_an_objective(tmp_path: Path) -> None:
    data = macro_file(tmp_path)
    out = tmp_path / "obj.yaml"
    code, text = run("score", "--fit", str(data), *ANALYTIC, "--out", str(out), "--json")
    assert code == 0, text
    report = json.loads(text)
    assert report["leave_one_out"]["n"] == 12
    assert report["validation"]["loo_kendall_tau"] == report["leave_one_out"]["kendall_tau"]
    code, text = run("score", "--space", "nas-bench-macro", "--objective", str(out), "--json")
    assert code == 0, text
    assert json.loads(text)["score"] == pytest.approx(
        get_objective(str(out)).score(__import__("archdesign.spaces", fromlist=["x"])
                                      .get_space("nas-bench-macro").spec()))
    code, text = run("score", "--validate", str(data), "--objective", str(out),
                     "--objective", "flops")
    assert code == 0, text
    code, text = run("score", "--fit", str(data), *ANALYTIC, "--out", str(out))
    assert code == 0, text
    assert "leave-one-out" in text
    # the MP cannot bound a fitted objective and says so
    code, text = run("design", "--space", "nas-bench-macro", "--flops", "60M",
                     "--objective", str(out))
    assert code == 2
    assert "checked on" in text and "bound" in text


@pytest.mark.parametrize("args, match", [
    (["--fit", "DATA"], "--out"),
    (["--validate", "DATA", "--column", "nope"], "no column 'nope'"),
    (["--validate", "DATA", "--arch", "resnet18"], "not SPEC_FILE"),
    (["--arch", "resnet18", "--lower-is-better"], "--validate/--fit only"),
    (["--validate", "DATA", "--fit", "DATA"], "one of"),
])
def test_score_validate_input_errors(tmp_path: Path, args: list[str], match: str) -> None:
    data = str(macro_file(tmp_path))
    code, text = run("score", *[data if a == "DATA" else a for a in args])
    assert code == 2, text
    assert match in " ".join(text.split())
