from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def tinynas_dir() -> Path:
    path = SHARED / "tinynas_v100"
    if not (path / "conv_data.out").exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture
def ofa_dir() -> Path:
    path = SHARED / "ofa_luts"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path
