from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from archdesign.cli import main
from archdesign.zoo import get_arch


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archdesign", *args], capture_output=True,
                          text=True, check=False)


def test_regnet_example_from_the_issue() -> None:
    args = ["cost", "--space", "regnet", "--set", "depth=13", "--set", "w0=24", "--set",
            "wa=36.44", "--set", "wm=2.49", "--set", "group_w=8", "--json"]
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["flops"], data["params"], data["activations"]) == (199_039_872, 2_684_792,
                                                                   2_164_056)
    assert data["peak_activation_bytes"] == 3_110_912
    regnety = json.loads(_run(*args, "--set", "se=0.25").stdout)
    assert regnety["params"] == 3_162_996


def test_cost_of_a_spec_file_with_batch_and_per_layer(tmp_path: Path) -> None:
    path = tmp_path / "r18.json"
    get_arch("resnet18").save(path)
    result = CliRunner().invoke(main, ["cost", str(path), "--batch", "4", "--per-layer",
                                       "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["flops"] == 1_814_073_344 and data["batch"] == 4
    assert sum(x["flops"] for x in data["layers"]) == data["flops"]
    assert set(data["stages"]) == {"stem", "s1", "s2", "s3", "s4", "head"}


def test_resolution_override_and_human_table() -> None:
    result = CliRunner().invoke(main, ["cost", "--arch", "resnet50", "--resolution", "160"])
    assert result.exit_code == 0, result.output
    assert "resnet50 @ 160px" in result.output and "total" in result.output


def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [{block: basic, width: -1, depth: 2}]\n")
    cases = [
        (["cost", str(bad)], "stages[0].width: -1 is outside the allowed range"),
        (["cost", "--arch", "resnet9000"], "unknown architecture 'resnet9000'"),
        (["cost", "--space", "regnet", "--set", "depth"], "expected KEY=VALUE"),
        (["cost", "--space", "regnet", "--set", "wm=9"], "'wm': 9 is outside [1.5, 3]"),
        (["cost"], "give exactly one of SPEC_FILE, --arch NAME or --space NAME"),
    ]
    for args, message in cases:
        result = _run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in " ".join(result.stderr.split()), (args, result.stderr)
        assert result.stdout == ""


def test_spaces_list_and_show() -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    listing = runner.invoke(main, ["spaces"])
    assert listing.exit_code == 0
    for name in ("resnet-bottleneck", "mobilenet", "regnet", "resnet50", "convnext_tiny"):
        assert name in listing.output
    shown = runner.invoke(main, ["spaces", "show", "regnet"])
    assert shown.exit_code == 0 and "group_w" in shown.output and "36.44" in shown.output
