"""Device calibration benchmark: every device column of ../shared/data/latency, one run.

For each device column (OFA MobileNetV3 subnets on 3 GPUs, FBNet CIFAR-100 networks on 5
GPUs, 4 Xeons and 4 phones, timm's torch.compile latencies of the zoo networks on a Core
i7-12700H, split by network so no network is on both sides at two resolutions), calibrate
the device's datasheet profile on k = 5, 20, 100 seeded random networks (``profile
calibrate``'s code) and evaluate on all the others:
within ±10%, Spearman and median APE, beside baselines fitted on the same k networks
(FLOPs-linear, activations-linear, FLOPs + activations + params linear) and the
uncalibrated datasheet roofline. Targets at k = 20: >= 90% within ±10% and Spearman >= 0.98
on GPUs at batch >= 32 and on CPUs; >= 80% and >= 0.95 on phones.

    python benchmarks/bench_devices.py                 # all columns, k = 5, 20, 100
    python benchmarks/bench_devices.py --quick         # 4 columns, k = 20, 2,000 networks
    python benchmarks/bench_devices.py --write-profiles hardware_profiles

``--write-profiles DIR`` regenerates the built-in calibrated profiles deterministically:
per device, one fit on ``--profile-k`` seeded networks of each of its columns (every
batch it was measured at), validated on all its other networks, column by column.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from archdesign.cost import cost_many
from archdesign.hardware.calibrate import (
    FUSION_CHOICES,
    Features,
    Fit,
    KernelCounts,
    calibrate_features,
    calibrated_profile,
    file_digest,
    kernel_counts,
)
from archdesign.hardware.profile import HardwareProfile, load_profile
from archdesign.hardware.validate import metrics
from archdesign.measurements import MeasurementFile, read_measurements
from archdesign.zoo import get_arch, list_archs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "latency"
DATASHEETS = ROOT / "hardware_profiles" / "datasheets"
OFA, FBNET, TIMM = "ofa_mbv3_gpu.csv", "fbnet_cifar100.csv", "timm_inference.csv"
SPACES = {OFA: "ofa-mbv3", FBNET: "fbnet-cifar100"}
RUNTIME = "PyTorch (HELP's measurement scripts), fp32"
RUNTIMES = {TIMM: "PyTorch 2.4 torch.compile (timm's benchmark.py), fp32, NCHW"}
#: timm result files of devices measured at batch 1 in fp32 (latency, not throughput)
TIMM_SOURCES = {"i7_12700h": "benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.csv"}
SOURCES = {OFA: "HELP (Lee et al., NeurIPS 2021) end-to-end measurements",
           FBNET: "HELP (Lee et al., NeurIPS 2021) end-to-end measurements",
           TIMM: "timm's own inference benchmarks (huggingface/pytorch-image-models results/)"}


@dataclass(frozen=True)
class Column:
    file: str
    column: str
    profile: str  # hardware_profiles/datasheets/NAME.yaml, and the built-in profile's name
    batch: int
    category: str  # gpu, cpu, phone
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.profile} b{self.batch} ({self.file.split('_')[0]})"


def _gpu(file: str, prefix: str, profile: str) -> list[Column]:
    return [Column(file, f"{prefix}_{b}", profile, b, "gpu") for b in (1, 32, 64)]


COLUMNS: list[Column] = [
    *_gpu(OFA, "2080ti", "rtx2080ti"), *_gpu(OFA, "titan_rtx", "titan-rtx"),
    *_gpu(OFA, "titan_xp", "titan-xp"),
    *_gpu(FBNET, "1080ti", "gtx1080ti"), *_gpu(FBNET, "2080ti", "rtx2080ti"),
    *_gpu(FBNET, "titan_rtx", "titan-rtx"), *_gpu(FBNET, "titanx", "titan-x"),
    *_gpu(FBNET, "titanxp", "titan-xp"),
    Column(FBNET, "gold_6226", "xeon-gold-6226", 1, "cpu"),
    Column(FBNET, "gold_6240", "xeon-gold-6240", 1, "cpu"),
    Column(FBNET, "silver_4114", "xeon-silver-4114", 1, "cpu"),
    Column(FBNET, "silver_4210r", "xeon-silver-4210r", 1, "cpu"),
    Column(FBNET, "essential_ph_1", "essential-ph1", 1, "phone", "integer ms"),
    Column(FBNET, "samsung_a50", "galaxy-a50", 1, "phone", "integer ms"),
    Column(FBNET, "samsung_s7", "galaxy-s7", 1, "phone", "integer ms"),
    Column(FBNET, "pixel3", "pixel3", 1, "phone",
           "a per-block sum of TFLite timings (HW-NAS-Bench), not end to end"),
    Column(TIMM, "i7_12700h", "i7-12700h", 1, "cpu",
           "zoo networks at timm's resolutions; split by network, not resolution"),
]
QUICK = ("2080ti_64", "gold_6240", "samsung_a50", "titan_rtx_32")
TARGETS = {"gpu": (0.90, 0.98), "cpu": (0.90, 0.98), "phone": (0.80, 0.95)}


def target(col: Column) -> tuple[float, float] | None:
    if col.category == "gpu" and col.batch < 32:
        return None  # batch-1 GPU times are framework overhead: no target
    return TARGETS[col.category]


def timm_zoo_name(model: str) -> str:
    """The zoo name a timm model name would have (``regnetx_016`` -> ``regnetx_1_6gf``,
    ``mobilenetv2_140`` -> ``mobilenet_v2_1.4``); unchanged where the names agree. Only a
    candidate: :class:`Dataset` keeps a match only if parameters and MACs agree too."""
    m = re.fullmatch(r"regnet([xy])_(\d{3})", model)
    if m:
        mf = int(m.group(2)) * 100
        size = (f"{mf}mf" if mf < 1000 else f"{mf // 1000}gf" if mf % 1000 == 0
                else f"{mf // 1000}_{mf % 1000 // 100}gf")
        return f"regnet{m.group(1)}_{size}"
    m = re.fullmatch(r"mobilenetv2_(\d)(\d\d)", model)
    if m:
        width = f"{int(m.group(1)) + int(m.group(2)) / 100:g}"
        return f"mobilenet_v2_{width if '.' in width else width + '.0'}"
    m = re.fullmatch(r"mobilenetv3_(large|small)_100", model)
    return f"mobilenet_v3_{m.group(1)}" if m else model


def _timm_rows(device: str) -> list[tuple[int, str, int, float]]:
    """(line, zoo name@resolution, batch, ms) of the timm rows of ``device`` whose network
    the zoo expresses: the name maps to a zoo network whose parameter count agrees within
    1% and MACs within 5% (timm rounds to 0.01 GMACs) at that resolution."""
    with (DATA / TIMM).open(newline="") as f:
        records = list(csv.DictReader(f))
    known = set(list_archs())
    found = []
    for line, r in enumerate(records, start=2):
        zoo = timm_zoo_name(r["model"])
        if r["source_file"] == TIMM_SOURCES[device] and zoo in known:
            found.append((line, f"{zoo}@{r['img_size']}", int(r["batch_size"]),
                          float(r["step_time_ms"]), float(r["param_count_M"]),
                          float(r["gmacs"])))
    costs = cost_many([get_arch(name) for _, name, *_ in found])
    keep = []
    for (line, name, batch, ms, params, gmacs), p, macs in zip(
            found, costs["params"], costs["flops"], strict=True):
        if abs(p / 1e6 - params) <= 0.01 * params + 0.005 and \
                abs(macs / 1e9 - gmacs) <= 0.05 * gmacs + 0.005:
            keep.append((line, name, batch, ms))
    return keep


class Dataset:
    """One measurement file: its networks read once, kernel counts cached per fusion.

    ``groups``: rows of the same network (at other resolutions) share a group, and a
    calibration split never puts one group on both sides.
    """

    def __init__(self, name: str, limit: int | None) -> None:
        path = DATA / name
        if name == TIMM:
            rows = {d: _timm_rows(d) for d in TIMM_SOURCES}
            networks = sorted({n for found in rows.values() for _, n, _, _ in found})
            self.specs = [get_arch(n) for n in networks]
            self.names = networks
            self.lines = np.zeros(len(networks), dtype=np.int64)
            self.values = {}
            for device, found in rows.items():
                by_name = {n: (line, ms) for line, n, _, ms in found}
                self.values[device] = np.array([by_name[n][1] if n in by_name else np.nan
                                                for n in networks])
                self.lines = np.maximum(self.lines, [by_name.get(n, (0, 0))[0]
                                                     for n in networks])
            self.groups = np.unique([n.partition("@")[0] for n in networks],
                                    return_inverse=True)[1]
        else:
            first = next(c.column for c in COLUMNS if c.file == name)
            data: MeasurementFile = read_measurements(path, column=first, space=SPACES[name])
            measured = data.rows[:limit] if limit else data.rows
            self.specs = [m.spec for m in measured]
            self.names = [m.network for m in measured]
            self.lines = np.array([m.line for m in measured])
            # the other device columns of the same rows (same networks, read by line)
            with path.open(newline="") as f:
                records = list(csv.DictReader(f))
            self.values = {c.column: np.array([float(records[line - 2][c.column] or "nan")
                                               for line in self.lines])
                           for c in COLUMNS if c.file == name}
            self.groups = np.arange(len(self.specs))
        costs = cost_many(self.specs)
        self.costs = {k: np.asarray(costs[k], dtype=np.float64)
                      for k in ("flops", "activations", "params")}
        self._counts: dict[tuple[int, Any], KernelCounts] = {}

    def counts(self, batch: int, rules: Any) -> KernelCounts:
        key = (batch, rules)
        if key not in self._counts:
            self._counts[key] = kernel_counts(self.specs, np.full(len(self.specs), batch),
                                              rules)
        return self._counts[key]

    def features(self, batch: int, profile: HardwareProfile) -> dict[Any, Features]:
        return {rules: self.counts(batch, rules).features(profile) for rules in FUSION_CHOICES}


def split(ds: Dataset, usable: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded calibration and evaluation rows: whole groups, in a random order, until at
    least ``k`` rows are drawn (exactly ``k`` where every row is its own group)."""
    groups = ds.groups[usable]
    order = np.random.default_rng(seed).permutation(np.unique(groups))
    sizes = np.array([np.sum(groups == g) for g in order])
    taken = order[:int(np.searchsorted(np.cumsum(sizes), k)) + 1]
    train = np.isin(groups, taken)
    return usable[train], usable[~train]


def linear(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    ones = np.ones((len(x_train), 1))
    w = np.linalg.lstsq(np.hstack([x_train, ones]), y_train, rcond=None)[0]
    return np.hstack([x_test, np.ones((len(x_test), 1))]) @ w


def evaluate_column(ds: Dataset, col: Column, ks: tuple[int, ...], seed: int,
                    ) -> dict[str, Any]:
    y = ds.values[col.column]
    usable = np.flatnonzero(np.isfinite(y) & (y > 0))
    base = load_profile(DATASHEETS / f"{col.profile}.yaml")
    candidates = ds.features(col.batch, base)
    out: dict[str, Any] = {"column": col.column, "file": col.file, "batch": col.batch,
                           "category": col.category, "n": len(usable), "k": {}}
    datasheet_fit = Fit.of_profile(base)
    all_ds = datasheet_fit.predict(candidates[base.fusion])
    x = np.column_stack([ds.costs["flops"], ds.costs["activations"], ds.costs["params"]])
    for k in ks:
        if k >= len(usable) - 5:
            continue  # too few networks left to evaluate on
        train, test = split(ds, usable, k, seed)
        t0 = time.perf_counter()
        result = calibrate_features({r: f.subset(train) for r, f in candidates.items()},
                                    y[train], base)
        predicted = result.fit.predict(candidates[result.fit.rules].subset(test))
        fit_s = time.perf_counter() - t0
        out["k"][k] = {
            "calibrated": metrics(predicted, y[test]),
            "cross_validated": result.cross_validated,
            "flops_linear": metrics(linear(x[train, :1], y[train], x[test, :1]), y[test]),
            "acts_linear": metrics(linear(x[train, 1:2], y[train], x[test, 1:2]), y[test]),
            "fap_linear": metrics(linear(x[train], y[train], x[test]), y[test]),
            "datasheet": metrics(all_ds[test], y[test]),
            "fusion": result.fit.rules.conv_norm_act + 2 * result.fit.rules.residual_add,
            "fit_s": fit_s,
        }
    return out


def shortfall(col: Column, m: dict[str, Any]) -> str:
    goal = target(col)
    figures = m["calibrated"]
    notes = []
    if goal is not None and (figures["within_10pct"] < goal[0] or figures["spearman"] < goal[1]):
        notes.append(f"below target {goal[0]:.0%}/{goal[1]}")
    best_baseline = max(m[b]["within_10pct"] for b in
                        ("flops_linear", "acts_linear", "fap_linear", "datasheet"))
    if figures["within_10pct"] < best_baseline:
        notes.append(f"behind a baseline ({best_baseline:.1%})")
    if col.note:
        notes.append(col.note)
    return "; ".join(notes)


def write_profiles(datasets: dict[str, Dataset], out_dir: Path, k: int, seed: int,
                   console: Console) -> None:
    """One calibrated profile per device from all its columns, validated on the rest."""
    devices: dict[str, list[Column]] = {}
    for col in COLUMNS:
        if col.file in datasets:
            devices.setdefault(col.profile, []).append(col)
    for name, cols in devices.items():
        base = load_profile(DATASHEETS / f"{name}.yaml")
        parts: list[tuple[Column, np.ndarray, np.ndarray, dict[Any, Features]]] = []
        for col in cols:
            ds = datasets[col.file]
            y = ds.values[col.column]
            usable = np.flatnonzero(np.isfinite(y) & (y > 0))
            parts.append((col, *split(ds, usable, min(k, len(usable) // 4), seed),
                          ds.features(col.batch, base)))
        # batch-1 GPU times are framework overhead that differs between the two data
        # sets: a GPU profile is fitted on its batch >= 32 columns, checked on all
        fitted = [p for p in parts if target(p[0]) is not None]
        joint = {rules: _stack([p[3][rules].subset(p[1]) for p in fitted])
                 for rules in FUSION_CHOICES}
        measured = np.concatenate([datasets[c.file].values[c.column][tr]
                                   for c, tr, _, _ in fitted])
        result = calibrate_features(joint, measured, base)
        held_out: dict[str, Any] = {}  # every column; the summary: the fitted ones
        predicted_all, measured_all = [], []
        records = []
        for col, train, test, feats in parts:
            ds = datasets[col.file]
            y = ds.values[col.column]
            predicted = result.fit.predict(feats[result.fit.rules].subset(test))
            held_out[f"{col.file}:{col.column}"] = {**metrics(predicted, y[test]),
                                                    "batch": col.batch}
            if target(col) is not None:
                predicted_all.append(predicted)
                measured_all.append(y[test])
            records.append({"fitted": target(col) is not None,
                            "path": f"../shared/data/latency/{col.file}",
                            "sha256": file_digest(DATA / col.file), "column": col.column,
                            **({"space": SPACES[col.file]} if col.file in SPACES else {}),
                            "batch": col.batch,
                            "lines": ds.lines[train].tolist()})
        overall = metrics(np.concatenate(predicted_all), np.concatenate(measured_all))
        profile = calibrated_profile(
            base, result, name, records, held_out={**overall, "columns": held_out},
            runtime=RUNTIMES.get(cols[0].file, RUNTIME),
            source=", ".join(sorted({f"{SOURCES[c.file]}, {c.file}" for c in cols})))
        path = out_dir / f"{name}.yaml"
        profile = replace(profile, path=path.resolve())
        profile.save(path)
        header = (f"# {base.device}: calibrated on {len(parts[0][1])} seeded "
                  f"networks per measured column\n"
                  f"# and validated on all the others. Regenerate (deterministic):\n"
                  f"#   python benchmarks/bench_devices.py --write-profiles hardware_profiles "
                  f"--profile-k {k} --seed {seed}\n")
        path.write_text(header + path.read_text())
        console.print(f"wrote {path}: held out within ±10% {overall['within_10pct']:.1%}, "
                      f"Spearman {overall['spearman']:.4f}, n {overall['n']}")


def _stack(parts: list[Features]) -> Features:
    """Features of several networks sets (different batches) as one set."""
    from scipy.sparse import block_diag

    return Features(parts[0].rules, block_diag([p.counts for p in parts], format="csr"),
                    np.concatenate([p.op_class for p in parts]),
                    np.concatenate([p.compute_ms for p in parts]),
                    np.concatenate([p.memory_ms for p in parts]),
                    np.concatenate([p.shape for p in parts]),
                    np.concatenate([p.groups for p in parts]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 columns, k = 20, 2,000 nets")
    parser.add_argument("--k", type=int, nargs="+", help="calibration set sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", nargs="+", help="only these device columns")
    parser.add_argument("--json", help="also write all figures to this JSON file")
    parser.add_argument("--write-profiles", type=Path, help="write the calibrated profiles "
                                                            "of every device into this folder")
    parser.add_argument("--profile-k", type=int, default=100,
                        help="networks per column the written profiles are fitted on")
    args = parser.parse_args()
    ks = tuple(args.k or ((20,) if args.quick else (5, 20, 100)))
    wanted = args.columns or (QUICK if args.quick else None)
    columns = [c for c in COLUMNS if wanted is None or c.column in wanted]
    console = Console(width=200)
    t0 = time.perf_counter()
    limit = 2000 if args.quick else None
    datasets = {name: Dataset(name, limit) for name in sorted({c.file for c in columns})}
    console.print(f"read and costed {sum(len(d.specs) for d in datasets.values())} networks "
                  f"in {time.perf_counter() - t0:.1f} s")
    if args.write_profiles:
        write_profiles(datasets, args.write_profiles, args.profile_k, args.seed, console)
        return
    results: list[dict[str, Any]] = []
    for k in ks:
        table = Table(title=f"k = {k}: calibrated on {k} networks, evaluated on the others "
                            f"(within ±10% / Spearman / median APE %)")
        for name in ("device column", "calibrated", "CV (in k)", "FLOPs-lin", "acts-lin",
                     "F+A+P-lin", "datasheet", "shortfall"):
            table.add_column(name, justify="left" if name in ("device column", "shortfall")
                             else "right")
        for col in columns:
            if k == ks[0]:
                results.append(evaluate_column(datasets[col.file], col, ks, args.seed))
            r = next(x for x in results if x["column"] == col.column and x["file"] == col.file)
            m = r["k"][k]

            def cell(x: dict[str, Any]) -> str:
                return f"{x['within_10pct']:.0%} {x['spearman']:.3f} {x['mape']:.1f}"

            table.add_row(f"{col.label} {col.column}", cell(m["calibrated"]),
                          cell(m["cross_validated"]), cell(m["flops_linear"]),
                          cell(m["acts_linear"]), cell(m["fap_linear"]), cell(m["datasheet"]),
                          shortfall(col, m))
        console.print(table)
    console.print(f"total {time.perf_counter() - t0:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
