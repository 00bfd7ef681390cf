"""Cheap imports: the package and the commands that need no network stay off torch & co.

Each case runs in a fresh interpreter, since this process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Heavy modules none of the commands below needs: torch and networkx (about 2 s and 0.3 s
# to import), the search stack, plotting, ONNX, and scipy/cvxpy (the MP designer's).
HEAVY = ("torch", "networkx", "ray", "optuna", "sklearn", "plotly", "matplotlib", "onnx",
         "onnxruntime", "fvcore", "scipy", "cvxpy")

RUN_COMMAND = """
import json, sys
from archdesign.cli import main
code = main.main(sys.argv[1:], standalone_mode=False)
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_after(code: str, *args: str) -> tuple[str, set[str]]:
    """Run ``code`` (which prints a JSON object last) and the top-level modules it left."""
    out = subprocess.run([sys.executable, "-c", code, *args], check=True,
                         capture_output=True, text=True).stdout
    last = json.loads(out.splitlines()[-1])
    return out, {name.partition(".")[0] for name in last["modules"]}


@pytest.mark.parametrize("args", [
    ["--help"],
    ["spaces"],
    ["spaces", "show", "mobilenet"],
    ["cost", "--arch", "resnet18"],
    ["score", "--arch", "resnet18"],
    ["hardware"],
    ["hardware", "show", "x86-avx2"],
    ["design", "--help"],
], ids=" ".join)
def test_command_imports_nothing_heavy(args: list[str]) -> None:
    out, modules = loaded_after(RUN_COMMAND, *args)
    assert json.loads(out.splitlines()[-1])["code"] in (None, 0)
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_import_archdesign_is_free() -> None:
    _, modules = loaded_after(
        "import json, sys, archdesign; print(json.dumps({'modules': sorted(sys.modules)}))")
    assert modules.isdisjoint({*HEAVY, "numpy"})


def test_lazy_exports_are_the_functions() -> None:
    # Importing archdesign.cost (the module) binds it on the package; archdesign.cost must
    # still be the function, as must build and layers, in either order of first use.
    code = """
import json, sys
import archdesign
import archdesign.cost, archdesign.layers
from archdesign.zoo import get_arch
figures = archdesign.cost(get_arch("resnet18"))
assert callable(archdesign.layers) and "torch" not in sys.modules
build = archdesign.build
import archdesign.build
assert archdesign.build is build
import archdesign.hardware as hardware
for package in (archdesign, hardware):
    assert set(package.__all__) <= set(dir(package))
    for name in package.__all__:
        getattr(package, name)
try:
    archdesign.no_such_name
except AttributeError:
    pass
else:
    raise AssertionError("no AttributeError")
print(json.dumps({"flops": figures.flops, "modules": sorted(sys.modules)}))
"""
    out, modules = loaded_after(code)
    assert json.loads(out.splitlines()[-1])["flops"] == 1_814_073_344
    assert "torch" in modules
