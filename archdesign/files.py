"""Writing user-visible files: one atomic writer, and the checks on an output path.

Every file archdesign writes goes through :func:`atomic_write_bytes`: a temporary file in
the same directory, fsynced, renamed over the target, so a reader sees the old file or the
new, never half; on any failure (a full disk, a read-only file system) the temporary file
is removed and the error is an :class:`InputError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from archdesign.errors import InputError

#: Files a run directory owns (:mod:`archdesign.runs`); no output option may name one.
RUN_FILES = ("config.yaml", "journal.log", "journal.log.lock", "run.lock", "search.log",
             "pareto.json", "pareto.csv", "pareto.png", "measured.json", "sources")
RUN_MARKER = "config.yaml"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_output(option: str, path: str | Path, suffixes: Iterable[str] | None = None) -> Path:
    """``path`` if a command may write it: its directory exists, it is not a directory, its
    suffix is one of ``suffixes``, and it is not a file of a run directory."""
    path = Path(path)
    allowed = tuple(suffixes or ())
    if allowed and path.suffix.lower() not in allowed:
        raise InputError(f"{option}: {str(path)!r} must end in one of {list(allowed)}")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{option}: the directory {str(parent)!r} of {str(path)!r} does not "
                         f"exist")
    if path.is_dir():
        raise InputError(f"{option}: {str(path)!r} is a directory")
    real = path.resolve()
    own = [(real.parent, real.name)]
    if real.parent.name == "sources":  # the run's copies of its space and profile
        own.append((real.parent.parent, "sources"))
    if any((run / RUN_MARKER).exists() and (name in RUN_FILES or name.startswith("journal.log"))
           for run, name in own):
        raise InputError(f"{option}: {str(path)!r} is a file of the run directory "
                         f"{str(real.parent)!r}; write somewhere else")
    return path
