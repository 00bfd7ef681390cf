from __future__ import annotations

from pathlib import Path

import pytest

from archdesign.runs import RunDir
from archdesign.search import SearchConfig, run_search


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished six-trial search (shared, never modified by the corpus)."""
    path = tmp_path_factory.mktemp("runs") / "tiny"
    config = SearchConfig(space="resnet-basic", hardware="x86-avx2", trials=6, population=4,
                          strategy="nsga2",
                          budgets={"latency": 100.0})
    run_search(config, RunDir(path))
    return path
