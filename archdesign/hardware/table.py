"""Measured kernel latencies as a table: the data behind lookup-table and fitted models.

Stored as CSV next to the profile (data, never pickles): one row per measured kernel,
the kernel columns of :mod:`archdesign.hardware.kernels` plus ``batch``, ``dtype``,
``latency_ms``, ``spread`` (relative spread of the repetitions, NaN when unknown) and
``split`` (``train``: the model may fit it; ``test``: held out for validation).
Rows can be appended one at a time, so an interrupted measurement keeps what it timed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archdesign.errors import MAX_TABLE_BYTES, InputError, read_text_file
from archdesign.files import atomic_write_text
from archdesign.hardware.kernels import KERNEL_COLUMNS

EXTRA_COLUMNS = ("batch", "dtype", "latency_ms", "spread", "split")
HEADER = (*KERNEL_COLUMNS, *EXTRA_COLUMNS)
SPLITS = ("train", "test")


@dataclass(frozen=True)
class KernelTable:
    """Columns as arrays: ``rows`` (n x kernel columns), and one entry per row of the rest."""

    rows: np.ndarray
    batch: np.ndarray
    dtype: np.ndarray  # str
    latency_ms: np.ndarray
    spread: np.ndarray
    split: np.ndarray  # str

    def __len__(self) -> int:
        return len(self.latency_ms)

    def select(self, mask: np.ndarray) -> KernelTable:
        return KernelTable(self.rows[mask], self.batch[mask], self.dtype[mask],
                           self.latency_ms[mask], self.spread[mask], self.split[mask])

    def with_split(self, split: np.ndarray) -> KernelTable:
        return KernelTable(self.rows, self.batch, self.dtype, self.latency_ms, self.spread,
                           np.asarray(split, dtype=object))

    @property
    def train(self) -> KernelTable:
        return self.select(self.split == "train")

    @property
    def test(self) -> KernelTable:
        return self.select(self.split == "test")

    @staticmethod
    def empty() -> KernelTable:
        return KernelTable(np.zeros((0, len(KERNEL_COLUMNS))), np.zeros(0, dtype=np.int64),
                           np.zeros(0, dtype=object), np.zeros(0), np.zeros(0),
                           np.zeros(0, dtype=object))

    @staticmethod
    def from_records(records: Iterable[tuple[np.ndarray | list[float], int, str, float, float,
                                             str]]) -> KernelTable:
        items = list(records)
        if not items:
            return KernelTable.empty()
        rows = np.array([np.asarray(r[0], dtype=np.float64) for r in items])
        return KernelTable(rows, np.array([r[1] for r in items], dtype=np.int64),
                           np.array([r[2] for r in items], dtype=object),
                           np.array([r[3] for r in items], dtype=np.float64),
                           np.array([r[4] for r in items], dtype=np.float64),
                           np.array([r[5] for r in items], dtype=object))

    @staticmethod
    def concat(tables: list[KernelTable]) -> KernelTable:
        tables = [t for t in tables if len(t)]
        if not tables:
            return KernelTable.empty()
        return KernelTable(np.concatenate([t.rows for t in tables]),
                           np.concatenate([t.batch for t in tables]),
                           np.concatenate([t.dtype for t in tables]),
                           np.concatenate([t.latency_ms for t in tables]),
                           np.concatenate([t.spread for t in tables]),
                           np.concatenate([t.split for t in tables]))

    def save(self, path: str | Path) -> None:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(HEADER)
        for i in range(len(self)):
            writer.writerow(format_row(self.rows[i], int(self.batch[i]), str(self.dtype[i]),
                                       float(self.latency_ms[i]), float(self.spread[i]),
                                       str(self.split[i])))
        atomic_write_text(path, buffer.getvalue())


def format_row(row: np.ndarray | list[float], batch: int, dtype: str, latency_ms: float,
               spread: float, split: str) -> list[str]:
    return [*(f"{int(v)}" for v in row), str(batch), dtype, f"{latency_ms:.6g}",
            "nan" if math.isnan(spread) else f"{spread:.4g}", split]


def load_table(path: str | Path) -> KernelTable:
    """Read a measurements CSV; errors name the file, line and column."""
    path = Path(path)
    text = read_text_file(path, "measurements", max_bytes=MAX_TABLE_BYTES)
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != HEADER:
            raise InputError(f"{path}: header must be {','.join(HEADER)}")
        records = []
        n_kernel = len(KERNEL_COLUMNS)
        for line, fields in enumerate(reader, start=2):
            if not fields:
                continue
            if len(fields) != len(HEADER):  # a row cut short by an interruption
                continue
            try:
                row = [float(v) for v in fields[:n_kernel]]
                batch = int(fields[n_kernel])
                latency = float(fields[n_kernel + 2])
                spread = float(fields[n_kernel + 3])
            except ValueError:
                raise InputError(f"{path}:{line}: not a number in {fields}") from None
            if not all(math.isfinite(v) and v >= 0 for v in row) or batch < 1:
                raise InputError(f"{path}:{line}: kernel columns must be finite numbers >= 0 "
                                 f"and batch >= 1, got {fields}")
            if not (math.isfinite(latency) and latency > 0):
                raise InputError(f"{path}:{line}: latency_ms must be a positive number, got "
                                 f"{fields[n_kernel + 2]!r}")
            split = fields[n_kernel + 4]
            if split not in SPLITS:
                raise InputError(f"{path}:{line}: split {split!r} is not one of {list(SPLITS)}")
            records.append((row, batch, fields[n_kernel + 1], latency, spread, split))
    return KernelTable.from_records(records)
