"""Every case of the bad-input corpus exits with 2, names its file or option, and never
shows a traceback (see :mod:`robustness.cases`)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from robustness.cases import BIG, CASES, FIFO, Case

from archdesign.cli import main
from archdesign.errors import MAX_DATA_BYTES


def _write(root: Path, files: dict[str, object]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is FIFO:
            os.mkfifo(path)
        elif content is BIG:
            with open(path, "wb") as f:
                f.truncate(MAX_DATA_BYTES + 1)  # sparse: nothing is written
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            assert isinstance(content, str)
            path.write_text(content)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clean_error(case: Case, tiny_run: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, case.files)
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{run}", str(tiny_run)) for a in case.argv]
    before = {p: p.stat().st_mtime_ns for p in tiny_run.iterdir()}
    result = CliRunner().invoke(main, argv)
    output = " ".join(result.output.split())
    assert "Traceback" not in output
    assert result.exit_code == 2, (result.exception, output)
    assert isinstance(result.exception, SystemExit), result.exception
    assert case.expected in output, output
    # a refused command leaves the run as it was
    assert {p: p.stat().st_mtime_ns for p in tiny_run.iterdir()} == before


def test_corpus_covers_every_command() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids)
    by_command = Counter(c.argv[0] for c in CASES)
    assert set(by_command) >= {"cost", "latency", "score", "build", "design", "search",
                               "pareto", "export", "profile", "spaces", "hardware"}
    assert len(CASES) >= 200
