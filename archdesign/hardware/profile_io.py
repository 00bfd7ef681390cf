"""Build a measured profile from an imported table: split, fit, validate, write."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from archdesign.errors import InputError
from archdesign.hardware.importers import FORMATS, random_split, read_ofa, read_tinynas
from archdesign.hardware.models import FittedModel, RooflineModel, TableModel
from archdesign.hardware.profile import HardwareProfile, ModelConfig, get_profile
from archdesign.hardware.table import KernelTable
from archdesign.hardware.validate import evaluate

logger = logging.getLogger(__name__)


def import_profile(fmt: str, paths: list[Path], out: Path, base: str | None = None,
                   batch: int | None = None, train_fraction: float = 0.8,
                   seed: int = 0) -> HardwareProfile:
    """Read tables in ``fmt``, hold out ``1 - train_fraction``, fit, validate, write ``out``.

    The measurements are written beside the profile (``NAME.measurements.csv``) with their
    split, so the fitted model can be refit identically at load and validated honestly.
    """
    if fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {list(FORMATS)}")
    base_profile = get_profile(base or ("v100" if fmt == "tinynas" else "rpi4"))
    roofline = RooflineModel(base_profile)
    tables: list[KernelTable] = []
    for path in paths:
        if fmt == "tinynas":
            tables.append(read_tinynas(path, batch))
        else:
            tables.append(read_ofa(path, base_profile.fusion,
                                   lambda rows: roofline.predict_kernels(rows, 1, "float32")))
    table = KernelTable.concat(tables)
    dtypes = sorted(set(table.dtype.tolist()))
    table = table.with_split(random_split(len(table), train_fraction, seed))
    name = out.name.removesuffix(".yaml")
    csv_path = out.with_name(f"{name}.measurements.csv")
    table.save(csv_path)
    precision = dtypes[0] if len(dtypes) == 1 else base_profile.precision
    profile = replace(
        base_profile, name=name, precision=precision,
        source=f"imported ({fmt}) from {', '.join(str(p) for p in paths)}; roofline figures "
               f"from the {base_profile.name} profile",
        model=ModelConfig("fitted", csv_path.name), path=out.resolve())
    fitted = FittedModel(profile, table.train)
    validation: dict[str, Any] = {
        "entries": len(table), "train": len(table.train), "test": len(table.test),
        "train_fraction": train_fraction, "seed": seed, "dtypes": dtypes,
    }
    if len(table.test):
        validation["kernels"] = {
            "fitted": evaluate(fitted, table.test),
            "table": evaluate(TableModel(profile, table.train), table.test),
            "roofline": evaluate(RooflineModel(profile), table.test),
        }
    if fmt == "ofa":
        validation["note"] = ("OFA tables time whole blocks; per-kernel times are the block "
                              "time split in proportion to roofline estimates")
    profile = replace(profile, validation=validation)
    profile.save(out)
    logger.info("wrote %s and %s (%d entries)", out, csv_path, len(table))
    return profile
