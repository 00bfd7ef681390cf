"""The run directory: resolved config, study storage, results, log; safe to kill at any time.

A run directory holds::

    config.yaml     the resolved search configuration (what --resume continues)
    journal.log     the Optuna study (JournalStorage), unless --storage names an RDB
    pareto.json     the front with specs and metrics, the frame and the hypervolume
    pareto.csv      the front as a table
    pareto.png      the front and the dominated trials
    measured.json   measured latencies of front candidates (--measure)
    search.log      the log of every session that worked on the run

Durability: a trial enters the storage in one append of one journal line (fsynced) once it
is evaluated and told, so a kill loses at most the trials of the batch in flight, which
were never recorded and are therefore redone, never duplicated. A line cut short by a kill
is dropped on the next open. Everything else is written atomically (temporary file,
fsync, rename). One process at a time works on a run: ``run.lock`` is an ``flock``
released by the kernel when its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from archdesign.errors import InputError, read_data_file

logger = logging.getLogger(__name__)

STUDY_NAME = "archdesign"
CONFIG_FILE = "config.yaml"
JOURNAL_FILE = "journal.log"


class RunError(InputError):
    """A run directory that cannot be used as asked."""


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def repair_journal(path: Path) -> int:
    """Drop a last line left incomplete by a kill; returns the number of bytes dropped.

    Optuna skips an unterminated last line when reading, but the next append would glue a
    new record onto it and corrupt both.
    """
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        tail_start = size
        cut = -1
        while cut < 0 and tail_start > 0:  # look back for the last complete line
            tail_start = max(0, tail_start - (1 << 16))
            f.seek(tail_start)
            tail = f.read(size - tail_start)
            if tail.endswith(b"\n"):
                return 0
            cut = tail.rfind(b"\n")
        keep = tail_start + cut + 1 if cut >= 0 else 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    logger.warning("%s: dropped an incomplete last record (%d bytes) left by an interrupted "
                   "write", path, size - keep)
    return size - keep


class RunDir:
    """Paths and safe writes of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL_FILE

    def exists(self) -> bool:
        return self.config_path.exists()

    def require(self) -> RunDir:
        """This run, or :class:`RunError` if the directory holds none."""
        if not self.exists():
            what = "does not exist" if not self.path.exists() else f"has no {CONFIG_FILE}"
            raise RunError(f"{self.path}: not a search run (the directory {what}); give the "
                           f"--run-dir of an `archdesign search`")
        return self

    def read_config(self) -> dict[str, Any]:
        data = read_data_file(self.config_path, "run config", RunError)
        if not isinstance(data, dict):
            raise RunError(f"{self.config_path}: expected a mapping")
        return data

    def write_config(self, data: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, yaml.safe_dump(data, sort_keys=False))

    def write_text(self, name: str, text: str) -> Path:
        atomic_write_text(self.path / name, text)
        return self.path / name

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run exclusively; a second search on the same run fails at once."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunError(f"{self.path}: another search is working on this run") from None
            # We hold the run, so a journal lock left behind was left by a killed process.
            stale = Path(str(self.journal_path) + ".lock")
            if stale.is_symlink() or stale.exists():
                logger.warning("%s: removing a journal lock left by an interrupted run", stale)
                stale.unlink()
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def logging_to_file(self) -> Iterator[None]:
        """Also log archdesign's INFO and above to ``search.log``."""
        handler = logging.FileHandler(self.path / "search.log", encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: "
                                               "%(message)s"))
        package = logging.getLogger("archdesign")
        before = package.level
        # Handlers that pass everything would start showing INFO once the package logger
        # lets it through: hold them at the level they effectively had.
        shown = package.getEffectiveLevel()
        quieted = [h for h in logging.getLogger().handlers if h.level == logging.NOTSET]
        for h in quieted:
            h.setLevel(shown)
        package.addHandler(handler)
        package.setLevel(min(shown, logging.INFO))
        try:
            yield
        finally:
            package.removeHandler(handler)
            package.setLevel(before)
            for h in quieted:
                h.setLevel(logging.NOTSET)
            handler.close()

    def storage(self, url: str | None = None) -> Any:
        """The Optuna storage: the run's journal file, or the RDB at ``url``."""
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        if url:
            try:
                return optuna.storages.RDBStorage(url)
            except Exception as exc:  # SQLAlchemy raises many kinds for a bad URL
                raise RunError(f"--storage: cannot open {url!r}: {exc}") from None
        self.path.mkdir(parents=True, exist_ok=True)
        repair_journal(self.journal_path)
        return JournalStorage(JournalFileBackend(str(self.journal_path)))
