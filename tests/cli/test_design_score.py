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


def test_design_says_plainly_when_there_is_no_bound(tmp_path: Path) -> None:
    """A space the MP cannot model (RegNet with any number of stages) is designed by a
    local search with exact evaluation, and the output says it has no upper bound instead
    of printing one."""
    text = (Path(__file__).parents[1] / "optimize" / "tiny-regnet.yaml").read_text()
    free = tmp_path / "free.yaml"
    free.write_text(text.replace("num_stages: 4\n", "").replace("tiny-regnet", "free"))
    code, text = run("design", "--space", str(free), "--flops", "4e8", "--max-nodes", "5",
                     "--json")
    assert code == 0, text
    data = json.loads(text)
    assert data["status"] == "no_bound" and data["upper_bound"] is None and data["gap"] is None
    assert data["flops"] <= 4e8
    assert any(note.startswith("no bound: space 'free'") for note in data["notes"])
    code, text = run("design", "--space", str(free), "--flops", "4e8", "--max-nodes", "5")
    assert code == 0, text
    assert "no upper bound" in text and "gap" not in text.split("no upper bound")[1][:40]


def test_two_design_runs_print_the_same_output() -> None:
    args = ("design", "--space", "resnet-bottleneck", "--flops", "1.82e9", "--params",
            "11.69M", "--rho", "0.3", "--max-nodes", "20", "--json")
    first, again = (json.loads(run(*args)[1]) for _ in range(2))
    for data in (first, again):
        del data["seconds"]  # the only figure that depends on the machine
    assert first == again
    assert first["status"] == "node_limit" and first["upper_bound"] >= first["score"]
