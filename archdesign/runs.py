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
is dropped when the writer next opens the run, under the lock; readers never write (they
read the journal once, check every record, and replay it in memory). Everything else
is written atomically (temporary file, fsync, rename). One process at a time works on a
run: ``run.lock`` is an ``flock`` released by the kernel when its holder dies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from archdesign.errors import InputError, read_data_file
from archdesign.files import atomic_write_text

if TYPE_CHECKING:
    from archdesign.search import SearchConfig

logger = logging.getLogger(__name__)

STUDY_NAME = "archdesign"
CONFIG_FILE = "config.yaml"
JOURNAL_FILE = "journal.log"
LOG_FILE = "search.log"
#: The run's own copies of its search space and hardware profile, with their hashes.
SOURCES_DIR = "sources"
MANIFEST_FILE = "manifest.yaml"
_SOURCE_KINDS = ("space", "hardware")


class RunError(InputError):
    """A run directory that cannot be used as asked."""


# Optuna's journal op codes for the two records an archdesign search writes.
_CREATE_STUDY = 0
_CREATE_TRIAL = 4
#: The user attribute in which a search records each trial's number, so that a lost or
#: repeated journal record shows as a gap or a repeat in the sequence.
TRIAL_ATTR = "trial"


@dataclass(frozen=True)
class Journal:
    """A checked reading of a journal file: its records and any unterminated tail."""

    records: list[dict[str, Any]]
    complete_bytes: int  # up to and including the last line end
    tail_bytes: int  # an unterminated last line (an append in flight, or cut by a kill)


def read_journal(path: Path) -> Journal:
    """Every record of the journal at ``path``, checked; :class:`RunError` with the line.

    Detected: a line that is not a JSON record (garbage), a record repeated byte for byte,
    and a trial record out of sequence (a record lost, or repeated by hand-editing).
    An unterminated last line is reported in ``tail_bytes``, not an error: a writer may
    be appending it right now.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read
            raise RunError(f"{path}: cannot read the journal (not a regular file)")
        # O_NONBLOCK: a file swapped for a FIFO after the stat must not hang the open.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            data = f.read()
    except OSError as exc:
        raise RunError(f"{path}: cannot read the journal ({exc.strerror})") from None
    cut = data.rfind(b"\n") + 1
    records: list[dict[str, Any]] = []
    seen: dict[bytes, int] = {}
    expected = 0
    for number, line in enumerate(data[:cut].split(b"\n")[:-1], start=1):
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError:
            raise RunError(f"{where}: not a journal record (garbage in the journal?): "
                           f"{line[:60]!r}") from None
        if not isinstance(record, dict) or not isinstance(record.get("op_code"), int):
            raise RunError(f"{where}: not a journal record (no op_code): {line[:60]!r}")
        if number == 1 and record["op_code"] != _CREATE_STUDY:
            raise RunError(f"{where}: the journal must start by creating the study (its "
                           f"first record is missing?)")
        if line in seen:
            raise RunError(f"{where}: repeats line {seen[line]} (a duplicated record)")
        seen[line] = number
        if record["op_code"] == _CREATE_TRIAL:
            attrs = record.get("user_attrs")
            trial = attrs.get(TRIAL_ATTR) if isinstance(attrs, dict) else None
            if trial is not None and trial != expected:
                raise RunError(f"{where}: records trial {trial} where trial {expected} comes "
                               f"next (a record is missing or repeated)")
            expected += 1
        records.append(record)
    return Journal(records, cut, len(data) - cut)


def repair_journal(path: Path) -> int:
    """Drop a last line left incomplete by a kill; returns the number of bytes dropped.

    Only the writer, holding the run lock, may call this: a reader would cut a record a
    live search is appending. Optuna skips an unterminated last line when reading, but
    the next append would glue a new record onto it and corrupt both.
    """
    if not path.exists():
        return 0
    journal = read_journal(path)
    if not journal.tail_bytes:
        return 0
    with open(path, "rb+") as f:
        f.truncate(journal.complete_bytes)
        f.flush()
        os.fsync(f.fileno())
    logger.warning("%s: dropped an incomplete last record (%d bytes) left by an interrupted "
                   "write", path, journal.tail_bytes)
    return journal.tail_bytes


def _source_files(kind: str, given: str) -> list[Path]:
    """The files a space or profile name stands for (a profile's measurements second)."""
    if kind == "space":
        from archdesign.spaces import get_space

        return [Path(get_space(given).source)]
    from archdesign.hardware.profile import get_profile

    profile = get_profile(given)
    assert profile.path is not None
    files = [profile.path]
    if profile.model is not None and profile.model.measurements:
        files.append(profile.resolve(profile.model.measurements))
    return files


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def open_rdb(url: str) -> Any:
    """The Optuna RDB storage at ``url``, or :class:`RunError` saying why not."""
    import optuna

    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:  # SQLAlchemy raises many kinds for a bad URL
        raise RunError(f"--storage: cannot open {url!r}: {exc}") from None


def _snapshot_backend(records: list[dict[str, Any]], path: Path) -> Any:
    from optuna.storages.journal import BaseJournalBackend

    class Snapshot(BaseJournalBackend):
        """The records read once; appending is refused (readers never write)."""

        def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
            yield from records[log_number_from:]

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            raise RunError(f"{path}: opened read-only")

    return Snapshot()


class RunDir:
    """Paths and safe writes of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._locked = False

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

    def read_search(self) -> dict[str, Any]:
        """The ``search`` section of the run's config, each value checked as in a search
        file (:func:`~archdesign.search_file.check_search_options`)."""
        from archdesign.search_file import check_search_options

        data = self.read_config()
        if "search" not in data:
            raise RunError(f"{self.config_path}: no 'search' section (the options the run "
                           f"was started with)")
        return check_search_options(data["search"], f"{self.config_path}: search",
                                    execution=False, error=RunError)

    def search_config(self) -> SearchConfig:
        """The run's :class:`~archdesign.search.SearchConfig`; a :class:`RunError` naming
        the config file and the key if it is not a valid one."""
        from archdesign.search import SearchConfig

        where = f"{self.config_path}: search"
        try:
            return SearchConfig.from_dict(self.read_search(), where)
        except RunError:
            raise
        except InputError as exc:  # the config's own checks name the key, not the file
            if str(exc).startswith(where):
                raise RunError(str(exc)) from None
            raise RunError(f"{where}: {exc}") from None

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
            self._locked = True
            yield
        finally:
            self._locked = False
            os.close(fd)

    @contextlib.contextmanager
    def logging_to_file(self) -> Iterator[None]:
        """Also log archdesign's INFO and above to ``search.log``."""
        handler = logging.FileHandler(self.path / LOG_FILE, encoding="utf-8")
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

    # -- the run's own copies of its space and profile -----------------------------------

    def store_sources(self, config: Any) -> None:
        """Copy the space and profile ``config`` names into the run (first session), or
        check that the ones it names still hold what the run was started with."""
        manifest_path = self.path / SOURCES_DIR / MANIFEST_FILE
        if manifest_path.exists():
            self.with_sources(config)  # refuses a changed source
            return
        (self.path / SOURCES_DIR).mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {}
        for kind in _SOURCE_KINDS:
            given = getattr(config, kind)
            files = _source_files(kind, given)
            copy = self.path / SOURCES_DIR / files[0].name
            if kind == "hardware" and len(files) > 1:  # the profile names its measurements
                data = read_data_file(files[0], "profile")
                data["model"]["measurements"] = files[1].name
                atomic_write_text(copy, yaml.safe_dump(data, sort_keys=False))
                atomic_write_text(copy.with_name(files[1].name), files[1].read_text())
            else:
                atomic_write_text(copy, files[0].read_text())
            manifest[kind] = {"given": given, "file": copy.name, "sha256": _digest(files)}
        atomic_write_text(manifest_path, yaml.safe_dump(manifest, sort_keys=False))

    def with_sources(self, config: Any, always: bool = False) -> Any:
        """``config`` with its space and profile read from the run's copies where the
        sources it names cannot be found from here (or ``always``); a source that can be
        found but changed since the run started is a :class:`RunError`."""
        manifest_path = self.path / SOURCES_DIR / MANIFEST_FILE
        if not manifest_path.exists():
            return config  # a run from before runs kept their sources
        manifest = read_data_file(manifest_path, "run sources", RunError)
        changes: dict[str, str] = {}
        for kind in _SOURCE_KINDS:
            entry = manifest.get(kind) if isinstance(manifest, dict) else None
            if not isinstance(entry, dict) or not {"given", "file", "sha256"} <= set(entry):
                raise RunError(f"{manifest_path}: no valid entry for {kind!r}")
            copy = str(self.path.resolve() / SOURCES_DIR / str(entry["file"]))
            given = getattr(config, kind)
            if always or given != entry["given"]:
                changes[kind] = copy
                continue
            try:
                files = _source_files(kind, given)
            except InputError:
                changes[kind] = copy  # moved, or not reachable from this directory
                continue
            if _digest(files) != entry["sha256"]:
                raise RunError(f"--{kind} {given}: {files[0]} changed since the run started "
                               f"(its copy is {copy}); restore it, or start a new --run-dir")
        return dataclasses.replace(config, **changes) if changes else config

    def storage(self, url: str | None = None) -> Any:
        """The writer's Optuna storage: the run's journal file, or the RDB at ``url``.

        Only under :meth:`lock`: a damaged journal is refused (the line is named) rather
        than continued, and a tail cut short by a kill is dropped.
        """
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        if not self._locked:
            raise RuntimeError(f"{self.path}: the writable storage needs the run lock")
        if url:
            return open_rdb(url)
        if self.journal_path.exists():
            self._writable_journal()
            repair_journal(self.journal_path)
        return JournalStorage(JournalFileBackend(str(self.journal_path)))

    def recorded_trials(self) -> int:
        """How many trials the run's journal records (0 without one, or with an RDB)."""
        if not self.journal_path.exists():
            return 0
        return sum(r["op_code"] == _CREATE_TRIAL for r in self._writable_journal().records)

    def _writable_journal(self) -> Journal:
        """The journal, checked before a writer continues it: damage is never built on."""
        try:
            return read_journal(self.journal_path)
        except RunError as exc:
            raise RunError(f"{exc}; the run is damaged, so --resume will not continue it "
                           f"(restore the journal or start a new --run-dir)") from None

    def read_storage(self, url: str | None = None) -> Any:
        """A reader's Optuna storage: the journal read once and checked, never written."""
        from optuna.storages import JournalStorage

        if url:
            return open_rdb(url)
        if not self.journal_path.exists():
            raise RunError(f"{self.path}: the run has no {JOURNAL_FILE} yet (did the search "
                           f"start?)")
        journal = read_journal(self.journal_path)
        return JournalStorage(_snapshot_backend(journal.records, self.journal_path))


# -- listing runs ------------------------------------------------------------------------------

RESULTS_FILE = "pareto.json"


@dataclass(frozen=True)
class RunListing:
    """What ``archdesign runs`` shows of one run, read from its config and results files.

    ``trials`` .. ``hypervolume`` are those of the run's last written results (None before
    the first); the hypervolume is in the run's own frame. ``problem`` says what could not
    be read.
    """

    path: Path
    space: str | None = None
    hardware: str | None = None
    strategy: str | None = None
    target: int | None = None  # trials the search was asked for
    trials: int | None = None
    feasible: int | None = None
    front: int | None = None
    hypervolume: float | None = None
    started: str | None = None  # when the first trial started (UTC), from the journal
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}


def find_runs(root: str | Path) -> list[Path]:
    """The run directories at or below ``root`` (those holding a config and a search log;
    a run's own subdirectories are not searched), in path order; :class:`RunError` if
    ``root`` is not a directory."""
    root = Path(root)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise RunError(f"{root}: {what}; give a directory of runs (default: runs)")
    found: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        if CONFIG_FILE in files and LOG_FILE in files:
            found.append(Path(directory))
            subdirs.clear()
        else:
            subdirs.sort()
    return sorted(found)


def _first_trial_start(journal: Path) -> str | None:
    """The start time of the journal's first trial: the run's date (the study's creation,
    its metric names and the first trial are the first three lines; no more are read).
    A line among them that is not a journal record is a :class:`RunError` naming it."""
    if not journal.is_file():  # none, or something a read could block on (a FIFO)
        return None
    try:
        with open(journal, "rb") as f:
            for number in range(1, 4):
                line = f.readline(1 << 20)
                if not line.endswith(b"\n"):
                    return None  # the end of the journal, or a record being appended
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    raise RunError(f"{journal}:{number}: not a journal record (garbage in "
                                   f"the journal?): {line[:60]!r}")
                if record.get("op_code") == _CREATE_TRIAL:
                    start = record.get("datetime_start")
                    return str(start) if start else None
    except OSError as exc:
        raise RunError(f"{journal}: cannot read the journal ({exc.strerror})") from None
    return None


#: The counts of a run's results file that ``archdesign runs`` shows.
_RESULT_COUNTS = ("trials", "feasible")


def _read_results(path: Path) -> dict[str, Any]:
    """The trials, feasible count, front size and hypervolume of a results file, checked."""
    data = read_data_file(path, "results", RunError)
    if not isinstance(data, dict):
        raise RunError(f"{path}: expected the mapping a search writes (trials, feasible, "
                       f"front, hypervolume), got {type(data).__name__}")
    for key in (*_RESULT_COUNTS, "front", "hypervolume"):
        if key not in data:
            raise RunError(f"{path}: no {key!r} (a results file holds trials, feasible, "
                           f"front, hypervolume)")
    for key in _RESULT_COUNTS:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RunError(f"{path}: {key}: expected a whole number >= 0, got {value!r}")
    if not isinstance(data["front"], list):
        raise RunError(f"{path}: front: expected a list of networks, got "
                       f"{type(data['front']).__name__}")
    hv = data["hypervolume"]
    if isinstance(hv, bool) or not isinstance(hv, (int, float)) or not 0.0 <= hv <= 1.0:
        raise RunError(f"{path}: hypervolume: expected a number from 0 to 1 (normalized "
                       f"in the run's frame), got {hv!r}")
    return {"trials": data["trials"], "feasible": data["feasible"],
            "front": len(data["front"]), "hypervolume": float(hv)}


def describe_run(path: str | Path) -> RunListing:
    """One run's listing; a run that cannot be read fully says why in ``problem``."""
    run = RunDir(path)
    try:
        config = run.search_config()
    except InputError as exc:
        return RunListing(run.path, problem=str(exc))
    listing = RunListing(run.path, config.space, config.hardware, config.strategy,
                         config.trials)
    try:
        listing = dataclasses.replace(listing, started=_first_trial_start(run.journal_path))
        results = run / RESULTS_FILE
        if not results.exists():
            return dataclasses.replace(listing, problem="no results yet (the search has not "
                                                        "written any)")
        return dataclasses.replace(listing, **_read_results(results))
    except RunError as exc:
        return dataclasses.replace(listing, problem=str(exc))


def list_runs(root: str | Path) -> list[RunListing]:
    """Every run at or below ``root``, read only (nothing is written, no lock is taken)."""
    return [describe_run(path) for path in find_runs(root)]
