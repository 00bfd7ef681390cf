"""An installed archdesign (a built wheel, or an editable install) has its built-in data.

Each test installs into a fresh venv without touching the network: the dependencies come
from this interpreter's environment through a ``.pth`` file, and the package is installed
with ``--no-deps --no-index``. The commands run from an empty directory without
PYTHONPATH, so what runs is the installed copy, not this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = {"search_spaces": "search_spaces", "hardware_profiles": "hardware_profiles",
             "archdesign/zoo": "zoo"}  # in the checkout -> in the package

# setuptools builds wheels itself (without the `wheel` package) from 70.1 on
pytest.importorskip("setuptools", minversion="70.1")


def copy_source(dest: Path) -> Path:
    """What a source distribution holds, copied, so building leaves the checkout clean."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest)
    for name in ("archdesign", "search_spaces", "hardware_profiles"):
        shutil.copytree(ROOT / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def make_venv(where: Path) -> Path:
    """A venv whose dependencies are this interpreter's site-packages; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_path('purelib'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # a .pth line appends a directory after the venv's own site-packages, so the installed
    # archdesign comes first even where this environment has one (e.g. editable)
    Path(purelib, "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def pip_install(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", *args], check=True)


def run(python: Path, cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["COLUMNS"] = "200"  # rich would otherwise wrap the tables to 80 columns
    result = subprocess.run([str(python.parent / "archdesign"), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def check_installed(python: Path, cwd: Path, data_root: Path) -> None:
    """The commands list the built-in spaces, profiles and zoo, read from ``data_root``."""
    data_root = data_root.resolve()  # the package resolves its own paths
    package = subprocess.run([str(python), "-c", "import archdesign; print(archdesign.__file__)"],
                             cwd=cwd, check=True, capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert Path(package.stdout.strip()).resolve().is_relative_to(data_root)

    spaces = run(python, cwd, "spaces")
    for name in ("mobilenet", "resnet-bottleneck", "regnet", "resnet18", "regnety_400mf"):
        assert name in spaces
    shown = run(python, cwd, "spaces", "show", "mobilenet")
    assert str(data_root) in shown.splitlines()[0]

    profiles = json.loads(run(python, cwd, "hardware", "--json"))["profiles"]
    by_name = {p["name"]: Path(p["path"]) for p in profiles}
    assert {"x86-avx2", "v100", "rpi4"} <= set(by_name)
    assert by_name["x86-avx2"].is_relative_to(data_root)

    figures = json.loads(run(python, cwd, "cost", "--arch", "resnet18", "--json"))
    assert (figures["flops"], figures["params"]) == (1_814_073_344, 11_689_512)


def test_wheel_carries_data_and_runs(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                    "--no-build-isolation", "-w", str(dist), str(src)], check=True)
    (wheel,) = dist.glob("*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"archdesign/{p.relative_to(ROOT / 'archdesign').as_posix()}"
                for p in (ROOT / "archdesign").rglob("*.py")}
    for checkout, packaged in DATA_DIRS.items():
        files = sorted((ROOT / checkout).glob("*.yaml"))
        assert files, checkout
        expected |= {f"archdesign/{packaged}/{p.name}" for p in files}
    assert expected - names == set()

    venv = tmp_path / "venv"
    python = make_venv(venv)
    pip_install(python, str(wheel))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    check_installed(python, cwd, venv)


def test_editable_install_reads_the_checkout(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    python = make_venv(tmp_path / "venv")
    pip_install(python, "-e", str(src))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    check_installed(python, cwd, src)
