"""Predicted against measured: the figures a latency model is judged by.

``within_10pct`` / ``within_20pct``: fraction of predictions within ±10% / ±20% of
measured; ``spearman`` and ``kendall``: rank correlations (what a search needs: the order
of candidates); ``mape``: *median* absolute percentage error (robust to a few outliers;
``mean_ape`` is given beside it); ``n``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from archdesign.errors import InputError
from archdesign.hardware.importers import read_tinynas
from archdesign.hardware.models import LatencyModel, TableModel, load_measurements, model_for
from archdesign.hardware.profile import HardwareProfile
from archdesign.hardware.table import KernelTable

if TYPE_CHECKING:
    from archdesign.measurements import MeasurementFile

logger = logging.getLogger(__name__)


def metrics(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float | int]:
    """within_10pct, within_20pct, spearman, kendall, mape (median APE, %), mean_ape (%), n."""
    predicted = np.asarray(predicted, dtype=np.float64)
    measured = np.asarray(measured, dtype=np.float64)
    if predicted.shape != measured.shape:
        raise ValueError(f"predicted {predicted.shape} and measured {measured.shape} differ")
    n = len(measured)
    if n == 0:
        return {"within_10pct": float("nan"), "within_20pct": float("nan"),
                "spearman": float("nan"), "kendall": float("nan"),
                "mape": float("nan"), "mean_ape": float("nan"), "n": 0}
    ape = np.abs(predicted - measured) / measured
    rho = float(spearmanr(predicted, measured).statistic) if n > 2 else float("nan")
    tau = float(kendalltau(predicted, measured).statistic) if n > 2 else float("nan")
    return {"within_10pct": float(np.mean(ape <= 0.10 + 1e-12)),
            "within_20pct": float(np.mean(ape <= 0.20 + 1e-12)), "spearman": rho,
            "kendall": tau, "mape": float(np.median(ape) * 100),
            "mean_ape": float(np.mean(ape) * 100), "n": n}


def evaluate(model: LatencyModel, table: KernelTable) -> dict[str, float | int]:
    """Per-kernel figures of ``model`` on the measured ``table``."""
    if not len(table):
        return metrics(np.zeros(0), np.zeros(0))
    return metrics(model.predict_kernels(table.rows, table.batch, table.dtype),
                   table.latency_ms)


def unseen(table: KernelTable, seen: KernelTable) -> KernelTable:
    """The entries of ``table`` whose kernel (shape, batch, dtype) is not in ``seen``."""
    known = set(TableModel._keys(seen.rows, seen.batch, seen.dtype))
    keys = TableModel._keys(table.rows, table.batch, table.dtype)
    return table.select(np.array([k not in known for k in keys], dtype=bool))


def validate_profile(profile: HardwareProfile, data: str | Path | None = None,
                     kind: str | None = None, data_format: str = "tinynas",
                     batch: int | None = None) -> dict[str, Any]:
    """Held-out figures for a profile's model.

    With ``data`` (a TinyNAS table): per-kernel figures on its entries the profile was not
    fitted on. Without: the stored measurements' ``test`` split, and the profile's stored
    whole-network figures (from ``profile measure``) when present.
    """
    model = model_for(profile, kind)
    result: dict[str, Any] = {"profile": profile.name, "model": model.kind}
    if data is not None:
        if data_format != "tinynas":
            raise InputError(f"--format: {data_format!r} is not supported for validation "
                             f"data; allowed: ['tinynas']")
        table = read_tinynas(data, batch=batch)
        fitted_on = (load_measurements(profile).train
                     if profile.model is not None and profile.model.measurements
                     else KernelTable.empty())
        held_out = unseen(table, fitted_on)
        result.update(evaluate(model, held_out))
        result["data"] = str(data)
        result["level"] = "kernel"
        return result
    if profile.model is not None and profile.model.measurements:
        result.update(evaluate(model, load_measurements(profile).test))
        result["level"] = "kernel"
    else:
        result.update(metrics(np.zeros(0), np.zeros(0)))
        result["level"] = "none"
    networks = profile.validation.get("networks")
    if networks:
        result["networks"] = networks
    return result


def predict_measured(model: LatencyModel, data: MeasurementFile) -> np.ndarray:
    """The model's latency (ms) of every network of a measurement file, at its batch."""
    out = np.empty(len(data.rows))
    by_batch: dict[int, list[int]] = {}
    for i, m in enumerate(data.rows):
        by_batch.setdefault(m.batch, []).append(i)
    for batch, index in by_batch.items():
        out[index] = model.predict_many([data.rows[i].spec for i in index], batch)
    return out


def validate_networks(profile: HardwareProfile, data: MeasurementFile,
                      kind: str | None = None) -> dict[str, Any]:
    """End-to-end figures of a profile's model on measured networks, and the table."""
    model = model_for(profile, kind)
    measured = np.array(data.values)
    predicted = predict_measured(model, data)
    return {"profile": profile.name, "model": model.kind, "level": "network",
            "data": str(data.path), "column": data.column, "skipped": data.skipped,
            **metrics(predicted, measured),
            "networks": [{"line": m.line, "network": m.network, "batch": m.batch,
                          "measured_ms": m.value, "predicted_ms": float(p)}
                         for m, p in zip(data.rows, predicted.tolist(), strict=True)]}
