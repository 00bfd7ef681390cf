"""``archdesign design`` and ``archdesign score``: JSON contracts and input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from archdesign.cli import main
from archdesign.objectives import get_objective
from archdesign.spec import load_spec
from archdesign.zoo import get_arch

TINY = str(Path(__file__).resolve().parents[1] / "optimize" / "tiny-bottleneck.yaml")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_design_json_has_the_contract_keys(tmp_path: Path) -> None:
    out = tmp_path / "spec.json"
    code, text = run("design", "--space", TINY, "--flops", "2M", "--params", "20e3",
                     "--rho", "0.3", "--tolerance", "0", "--out", str(out), "--json")
    assert code == 0, text
    data = json.loads(text)
    for key in ("score", "upper_bound", "gap", "flops", "params", "rho", "spec", "seconds"):
        assert key in data
    assert data["flops"] <= 2e6 and data["params"] <= 20e3 and data["rho"] <= 0.3
    spec = load_spec(out)
    assert spec.to_dict() == data["spec"]
    assert get_objective("deepmad").score(spec) == pytest.approx(data["score"])


def test_design_human_output() -> None:
    code, text = run("design", "--space", TINY, "--flops", "2e6", "--tolerance", "0")
    assert code == 0, text
    assert "upper bound" in text and "gap" in text and "flops" in text


@pytest.mark.parametrize("args, message", [
    (("--flops", "abc"), "--flops: expected a number"),
    ((), "give at least one budget"),
    (("--flops", "10"), "smallest network of the space costs"),
    (("--latency", "2ms"), "needs a hardware profile"),
])
def test_design_input_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    code, text = run("design", "--space", TINY, *args)
    assert code == 2
    assert message in text


def test_score_json_for_a_zoo_arch() -> None:
    code, text = run("score", "--arch", "resnet50", "--json")
    assert code == 0, text
    data = json.loads(text)
    assert data["score"] == pytest.approx(get_objective("deepmad").score(get_arch("resnet50")))
    assert 0 < data["rho"] < 1 and data["objective"] == "deepmad"


def test_score_unknown_objective_exits_2() -> None:
    code, text = run("score", "--arch", "resnet18", "--objective", "nope")
    assert code == 2 and "unknown objective" in text


def test_design_node_limit_default_is_the_designers() -> None:
    from archdesign.optimize.mp import DEFAULT_MAX_NODES

    code, text = run("design", "--help")
    assert code == 0 and f"[default: {DEFAULT_MAX_NODES}]" in " ".join(text.split())


def test_design_time_limit_cut_is_stated() -> None:
    code, text = run("design", "--space", TINY, "--flops", "3e6", "--params", "40e3",
                     "--tolerance", "0", "--time-limit", "1e-9")
    assert code == 0, text
    assert "time_limit" in text and "the time limit of 1e-09 s stopped the search" in \
        " ".join(text.split())
