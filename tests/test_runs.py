from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archdesign.files import atomic_write_text
from archdesign.runs import RunDir, RunError, repair_journal


def test_repair_drops_only_an_incomplete_last_line(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    journal.write_bytes(b'{"op_code":0}\n{"op_code":4}\n{"c":')
    assert repair_journal(journal) == len(b'{"c":')
    assert journal.read_bytes() == b'{"op_code":0}\n{"op_code":4}\n'
    assert repair_journal(journal) == 0
    journal.write_bytes(b'{"only":')
    repair_journal(journal)
    assert journal.read_bytes() == b""


def test_atomic_write_leaves_no_temporary(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "x.json", "{}")
    atomic_write_text(tmp_path / "x.json", '{"a": 1}')
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}


def test_lock_is_exclusive_and_clears_a_stale_journal_lock(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    stale = Path(str(run.journal_path) + ".lock")
    os.symlink(run.journal_path, stale)
    with run.lock():
        assert not stale.is_symlink()
        with pytest.raises(RunError, match="another search"), RunDir(run.path).lock():
            pass


def test_require_names_a_missing_run(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="not a search run"):
        RunDir(tmp_path / "nope").require()


def _trial_numbers(run_dir: Path) -> list[int]:
    from archdesign.report import load_trials
    from archdesign.search import SearchConfig

    run = RunDir(run_dir)
    config = SearchConfig.from_dict(run.read_config()["search"])
    return [t.number for t in load_trials(run, config)]


def _search(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "archdesign", "search", "--space", "mobilenet",
            "--hardware", "x86-avx2", "--strategy", "nsga2", "--population", "10",
            "--latency", "4ms", "--run-dir", str(run_dir), *extra]


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    total = 3000
    proc = subprocess.Popen(_search(run_dir, "--trials", str(total)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = run_dir / "journal.log"
    deadline = time.monotonic() + 120
    try:
        # Kill mid-run: once some trials are recorded, long before all are.
        while time.monotonic() < deadline:
            if journal.exists() and journal.read_bytes().count(b'"op_code":4') >= 40:
                break
            assert proc.poll() is None, "the search ended before it could be killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = _trial_numbers(run_dir)
    assert 40 <= len(before) < total
    assert before == list(range(len(before)))

    target = len(before) + 60
    resumed = subprocess.run(_search(run_dir, "--trials", str(target), "--resume"),
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    after = _trial_numbers(run_dir)
    assert after == list(range(target))
    assert json.loads((run_dir / "pareto.json").read_text())["trials"] == target


def test_list_runs_finds_runs_below_a_directory_and_reads_them_only(tmp_path: Path) -> None:
    import shutil

    import optuna

    from archdesign.runs import describe_run, find_runs, list_runs
    from archdesign.search import SearchConfig, run_search

    root = tmp_path / "runs"
    run_search(SearchConfig("resnet-basic", "x86-avx2", strategy="random", trials=8,
                            budgets={"latency": 100.0}), RunDir(root / "group" / "a"))
    shutil.copytree(root / "group" / "a", root / "b")
    (root / "b" / "pareto.json").unlink()  # a search that has written no results yet
    shutil.copytree(root / "group" / "a", root / "c")
    for name in ("pareto.json", "journal.log"):  # a read of either would block
        (root / "c" / name).unlink()
        os.mkfifo(root / "c" / name)
    (root / "notes").mkdir()
    (root / "notes" / "config.yaml").write_text("x: 1\n")  # a config, but no search log
    before = {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}
    assert find_runs(root) == [root / "b", root / "c", root / "group" / "a"]
    listing = {r.path.name: r for r in list_runs(root)}
    a, b = listing["a"], listing["b"]
    results = json.loads((root / "group" / "a" / "pareto.json").read_text())
    assert (a.space, a.hardware, a.strategy, a.target, a.trials) == \
        ("resnet-basic", "x86-avx2", "random", 8, 8)
    assert (a.feasible, a.front, a.hypervolume) == (results["feasible"],
                                                    len(results["front"]),
                                                    results["hypervolume"])
    storage = RunDir(root / "group" / "a").read_storage()
    first = optuna.load_study(study_name="archdesign", storage=storage).trials[0]
    assert a.started is not None
    assert a.started.startswith(first.datetime_start.isoformat(timespec="seconds"))
    assert a.problem is None
    assert b.trials is None and b.problem is not None and "no results yet" in b.problem
    c = listing["c"]
    assert c.started is None and c.problem is not None and "not a regular file" in c.problem
    assert describe_run(root / "group" / "a") == a
    assert {str(p): p.stat().st_mtime_ns for p in root.rglob("*")} == before
    with pytest.raises(RunError, match="does not exist"):
        list_runs(tmp_path / "nowhere")
