"""Measurement files: one CSV format for everything measured about whole networks.

Latency calibration and validation, local profiling and objective validation all read (and
write) this format. One row per network:

- the network, as a ``spec`` column (a spec file path, relative to the CSV or absolute, or
  a zoo name, ``NAME@RES`` allowed) or as a point of a search space (a ``space`` column,
  or ``space=`` for the whole file, plus one column per space parameter; parameters
  without a column take their defaults);
- optional ``resolution`` (overrides the network's input size) and ``batch`` columns
  (else the file-wide ``batch``, default 1);
- the measured value in ``column`` (``latency_ms`` by default; an accuracy, ...).

Other columns are ignored. A row whose value is empty, not a number, not finite, or not
positive when ``positive`` is asked for, is skipped and counted (``skipped``); any other
bad row is an :class:`InputError` naming the file, line and column.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from archdesign.errors import MAX_TABLE_BYTES, InputError, read_text_file
from archdesign.spec import ArchSpec, load_spec

if TYPE_CHECKING:
    from archdesign.spaces import SearchSpace



@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured network: where it came from, what it is, and the value."""

    line: int  # line of the CSV (the header is line 1)
    network: str  # the spec column, or "SPACE:k=v,..." for a space point
    spec: ArchSpec
    batch: int
    value: float


@dataclass(frozen=True, slots=True)
class MeasurementFile:
    path: Path
    column: str
    rows: tuple[Measurement, ...]
    skipped: int  # rows without a usable value

    @property
    def values(self) -> list[float]:
        return [m.value for m in self.rows]

    @property
    def specs(self) -> list[ArchSpec]:
        return [m.spec for m in self.rows]


def _value(text: str | None, positive: bool) -> float | None:
    """The measured value of a cell, or None when it is not usable."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    if not math.isfinite(value) or (positive and value <= 0):
        return None
    return value


def _int(path: Path, line: int, column: str, text: str, low: int, high: int) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value) or not low <= value <= high:
        raise InputError(f"{path}:{line}: column {column!r}: expected an integer in "
                         f"[{low}, {high}], got {text!r}")
    return int(value)


@cache
def _space(name: str) -> SearchSpace:
    from archdesign.spaces import get_space

    return get_space(name)


def _network(path: Path, line: int, row: dict[str, str], space: str | None,
             ) -> tuple[str, ArchSpec]:
    spec_text = (row.get("spec") or "").strip()
    space_name = (row.get("space") or "").strip() or space
    try:
        if spec_text:
            candidate = Path(spec_text)
            if not candidate.is_absolute():
                candidate = path.parent / candidate
            if spec_text.endswith((".json", ".yaml", ".yml")) or candidate.is_file():
                return spec_text, load_spec(candidate)
            from archdesign.zoo import get_arch

            return spec_text, get_arch(spec_text)
        if space_name is None:
            raise InputError("no network: give a 'spec' column, a 'space' column or --space")
        search_space = _space(space_name)
        point = {p.name: row[p.name].strip() for p in search_space.parameters
                 if (row.get(p.name) or "").strip()}
        label = f"{space_name}:" + ",".join(f"{k}={v}" for k, v in point.items())
        return label, search_space.spec(point)
    except InputError as exc:
        column = "spec" if spec_text else "space"
        raise InputError(f"{path}:{line}: column {column!r}: {exc}") from None


def read_measurements(path: str | Path, column: str = "latency_ms", space: str | None = None,
                      batch: int = 1, positive: bool = True) -> MeasurementFile:
    """The measured networks of a measurement file (see the module docstring)."""
    path = Path(path)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"--batch: expected a positive integer, got {batch!r}")
    text = read_text_file(path, "measurement file", max_bytes=MAX_TABLE_BYTES)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        records = list(reader)
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read a CSV measurement file ({exc})") from None
    if column not in header:
        raise InputError(f"{path}: no column {column!r} (the measured value); columns: "
                         f"{header}; choose one with --column")
    if "spec" not in header and "space" not in header and space is None:
        raise InputError(f"{path}: rows name no network: add a 'spec' column (file or zoo "
                         f"name) or a 'space' column, or give --space NAME")
    rows: list[Measurement] = []
    skipped = 0
    for line, row in enumerate(records, start=2):
        value = _value(row.get(column), positive)
        if value is None:
            skipped += 1
            continue
        network, spec = _network(path, line, row, space)
        if (row.get("resolution") or "").strip():
            resolution = _int(path, line, "resolution", row["resolution"], 8, 4096)
            try:
                spec = ArchSpec.from_dict({**spec.to_dict(), "resolution": resolution},
                                          f"{path}:{line}: column 'resolution'")
            except InputError as exc:
                raise InputError(str(exc)) from None
        row_batch = (_int(path, line, "batch", row["batch"], 1, 1 << 16)
                     if (row.get("batch") or "").strip() else batch)
        rows.append(Measurement(line, network, spec, row_batch, value))
    return MeasurementFile(path, column, tuple(rows), skipped)
