"""Faults around run directories: readers during a live writer, damaged journals, writes
onto a run's own files, full and read-only disks. Nothing may be lost or duplicated."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner, Result

from archdesign.cli import main
from archdesign.errors import InputError
from archdesign.files import atomic_write_bytes
from archdesign.runs import STUDY_NAME, RunDir, RunError, read_journal


def _cli(*argv: str) -> Result:
    return CliRunner().invoke(main, list(argv))


def _clean_error(result: Result, expected: str) -> None:
    output = " ".join(result.output.split())
    assert result.exit_code == 2, (result.exception, output)
    assert "Traceback" not in output and expected in output, output


def _copy_run(tiny_run: Path, to: Path) -> Path:
    shutil.copytree(tiny_run, to)
    return to


def _lines(run: Path) -> list[bytes]:
    return (run / "journal.log").read_bytes().splitlines(keepends=True)


def _trials(run: Path) -> list[int]:
    """The trial numbers the journal records, in order."""
    return [r["user_attrs"]["trial"] for r in read_journal(run / "journal.log").records
            if r["op_code"] == 4]


def _trial_record(template: bytes, number: int) -> bytes:
    record = json.loads(template)
    record["user_attrs"]["trial"] = number
    record["datetime_start"] = f"2026-01-01T00:00:{number % 60:02d}.{number:06d}+00:00"
    return (json.dumps(record) + "\n").encode()


# -- a reader during a live writer -------------------------------------------------------------


def test_readers_never_cut_a_record_being_appended(tiny_run: Path, tmp_path: Path) -> None:
    """A writer appends records in pieces at random split points while readers read: every
    read succeeds, sees a prefix of the trials, and the journal ends byte for byte as
    written."""
    run = _copy_run(tiny_run, tmp_path / "run")
    lines = _lines(run)
    trials = [line for line in lines if json.loads(line)["op_code"] == 4]  # (not the study's)
    template, kept = trials[0], len(trials)
    records = [_trial_record(template, n) for n in range(kept, kept + 150)]
    expected = b"".join(lines) + b"".join(records)
    rng = random.Random(0)
    done = threading.Event()

    def write() -> None:
        with open(run / "journal.log", "ab", buffering=0) as f:
            for record in records:
                cut = rng.randrange(1, len(record))
                f.write(record[:cut])
                time.sleep(rng.choice((0.0, 0.001, 0.005)))
                f.write(record[cut:])
                time.sleep(rng.choice((0.0, 0.005)))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    seen = []
    try:
        while not done.is_set() or not seen:
            trials = _trials(run)
            assert trials == list(range(len(trials)))
            study = optuna.load_study(study_name=STUDY_NAME,
                                      storage=RunDir(run).read_storage())
            assert len(study.get_trials(deepcopy=False)) >= len(trials)
            seen.append(len(trials))
            if len(seen) % 10 == 1:
                result = _cli("pareto", str(run), "--json")
                assert result.exit_code == 0, result.output
    finally:
        writer.join()
    assert (run / "journal.log").read_bytes() == expected
    assert len(seen) > 5 and seen == sorted(seen)
    assert json.loads(_cli("pareto", str(run), "--json").output)["trials"] == kept + 150


def test_pareto_during_a_live_search_loses_nothing(tmp_path: Path) -> None:
    run = tmp_path / "live"
    total = 200
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "archdesign", "search", "--space",
                             "resnet-basic", "--hardware", "x86-avx2", "--trials", str(total),
                             "--population", "8", "--strategy", "nsga2", "--run-dir", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    reads = 0
    try:
        while proc.poll() is None:
            if (run / "journal.log").exists():
                with contextlib.suppress(RunError):  # the study record may not be there yet
                    RunDir(run).read_storage()
                result = _cli("pareto", str(run), "--json")
                reads += result.exit_code == 0
            time.sleep(0.01)
    finally:
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert reads > 0
    assert _trials(run) == list(range(total))


# -- damaged journals ----------------------------------------------------------------------------


def _damage(run: Path, how: str) -> None:
    lines = _lines(run)
    if how == "garbage-end":
        lines.append(b"rm -rf / # not json\n")
    elif how == "garbage-middle":
        lines.insert(3, b'{"op_code": 4, "half": \n')
    elif how == "duplicate":
        lines.insert(3, lines[2])
    elif how == "missing":
        del lines[3]
    elif how == "first-missing":
        del lines[0]
    elif how == "not-a-record":
        lines.insert(2, b'["op_code", 4]\n')
    (run / "journal.log").write_bytes(b"".join(lines))


@pytest.mark.parametrize("how,line", [("garbage-end", 9), ("garbage-middle", 4),
                                      ("duplicate", 4), ("missing", 4),
                                      ("first-missing", 1), ("not-a-record", 3)])
def test_a_damaged_journal_is_reported_and_resume_refuses(tiny_run: Path, tmp_path: Path,
                                                          how: str, line: int) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    _damage(run, how)
    damaged = (run / "journal.log").read_bytes()
    config = (run / "config.yaml").read_bytes()
    _clean_error(_cli("pareto", str(run)), f"journal.log:{line}:")
    _clean_error(_cli("export", str(run), "--trial", "0", "--format", "json", "--out",
                      str(tmp_path / "x.json")), f"journal.log:{line}:")
    _clean_error(_cli("search", "--run-dir", str(run), "--resume", "--trials", "10"),
                 "--resume will not continue")
    assert (run / "journal.log").read_bytes() == damaged
    assert (run / "config.yaml").read_bytes() == config


def test_a_record_cut_by_a_kill_is_dropped_by_the_writer_only(tiny_run: Path,
                                                             tmp_path: Path) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    lines = _lines(run)
    cut = b"".join(lines[:-1]) + lines[-1][:40]
    (run / "journal.log").write_bytes(cut)
    result = _cli("pareto", str(run), "--json")
    assert result.exit_code == 0 and json.loads(result.output)["trials"] == len(lines) - 3
    assert (run / "journal.log").read_bytes() == cut  # the reader wrote nothing
    result = _cli("search", "--run-dir", str(run), "--resume", "--trials", "8")
    assert result.exit_code == 0, result.output
    assert _trials(run) == list(range(8))


def test_resume_with_fewer_trials_keeps_the_config(tiny_run: Path, tmp_path: Path) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    config = (run / "config.yaml").read_bytes()
    _clean_error(_cli("search", "--run-dir", str(run), "--resume", "--trials", "3"),
                 "--trials 3")
    assert (run / "config.yaml").read_bytes() == config


def test_a_bad_storage_url_leaves_no_run_directory(tmp_path: Path) -> None:
    run = tmp_path / "r"
    _clean_error(_cli("search", "--space", "resnet-basic", "--hardware", "x86-avx2",
                      "--run-dir", str(run), "--storage", "nosuchdb://x"), "--storage")
    assert not run.exists()


# -- no command writes over a run's own files ------------------------------------------------------


def test_export_through_a_symlink_onto_the_journal_is_refused(tiny_run: Path,
                                                             tmp_path: Path) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    before = (run / "journal.log").read_bytes()
    link = tmp_path / "innocent.json"
    link.symlink_to(run / "journal.log")
    _clean_error(_cli("export", str(run), "--trial", "0", "--format", "json", "--out",
                      str(link)), "is a file of the run directory")
    assert (run / "journal.log").read_bytes() == before


# -- full and read-only disks -------------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(path)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(disk: Path) -> None:
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
        while True:
            f.write(b"\0" * 4096)
            f.flush()


def test_a_full_disk_is_a_clean_error_and_leaves_no_temporary(tiny_run: Path,
                                                              tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "2m") as disk:
        run = _copy_run(tiny_run, disk / "run")
        _fill(disk)
        before = sorted(p.name for p in disk.rglob("*"))
        _clean_error(_cli("export", str(run), "--trial", "0", "--format", "json", "--out",
                          str(disk / "x.json")), "No space left on device")
        _clean_error(_cli("pareto", str(run), "--plot", str(disk / "front.png")),
                     "No space left on device")
        assert sorted(p.name for p in disk.rglob("*")) == before
        with pytest.raises(InputError, match="No space left"):
            atomic_write_bytes(disk / "y.bin", b"\1" * 100000)
        assert sorted(p.name for p in disk.rglob("*")) == before


def test_a_read_only_run_can_be_read_but_not_resumed(tiny_run: Path, tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        run = _copy_run(tiny_run, disk / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = _cli("pareto", str(run), "--json")
        assert result.exit_code == 0, result.output
        out = tmp_path / "x.json"
        result = _cli("export", str(run), "--trial", "0", "--format", "json", "--out",
                      str(out))
        assert result.exit_code == 0 and out.exists(), result.output
        _clean_error(_cli("search", "--run-dir", str(run), "--resume", "--trials", "8"),
                     "Read-only file system")


# -- self-contained run directories ------------------------------------------------------------


def test_a_run_keeps_its_own_space_and_profile(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    shutil.copy(root / "search_spaces" / "resnet-basic.yaml", work / "mine.yaml")
    shutil.copy(root / "hardware_profiles" / "x86-avx2.yaml", work / "box.yaml")
    monkeypatch.chdir(work)
    args = ["search", "--space", "mine.yaml", "--hardware", "box.yaml", "--population", "4",
            "--strategy", "nsga2",
            "--run-dir", "run"]
    assert _cli(*args, "--trials", "4").exit_code == 0
    run = work / "run"
    assert sorted(p.name for p in (run / "sources").iterdir()) == ["box.yaml",
                                                                   "manifest.yaml", "mine.yaml"]
    monkeypatch.chdir(elsewhere)  # the relative sources are not found from here
    result = _cli("pareto", str(run), "--json")
    assert result.exit_code == 0 and json.loads(result.output)["trials"] == 4, result.output
    result = _cli("search", "--run-dir", str(run), "--resume", "--trials", "6")
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(work)
    (work / "mine.yaml").write_text((work / "mine.yaml").read_text().replace("max: 8", "max: 6"))
    config = (run / "config.yaml").read_bytes()
    _clean_error(_cli("search", "--run-dir", "run", "--resume", "--trials", "8"),
                 "changed since the run started")
    assert (run / "config.yaml").read_bytes() == config
    assert _trials(run) == list(range(6))
    _clean_error(_cli("export", "run", "--trial", "0", "--format", "yaml", "--out",
                      "run/sources/mine.yaml"), "--out")
