"""Latency-model benchmark: the figures of issue 4, in one run.

1. V100 (TinyNAS TensorRT data, batch 1, FP32 and FP16): roofline-only Spearman, and a
   model fitted on 5% of the entries evaluated on the other 95%;
2. prediction throughput (networks/s, one core).

The local CPU (networks timed here in ONNX Runtime, calibrated, validated) is
``benchmarks/bench_measure.py``.

    python benchmarks/bench_latency.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from archdesign.hardware.importers import random_split, read_tinynas
from archdesign.hardware.measure import SampleConfig, sample_networks
from archdesign.hardware.models import FittedModel, RooflineModel, model_for
from archdesign.hardware.profile import get_profile
from archdesign.hardware.validate import evaluate

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tinynas_v100"


def row(table: Table, label: str, m: dict[str, float], note: str = "") -> None:
    table.add_row(label, f"{m['within_10pct']:.1%}", f"{m['spearman']:.4f}",
                  f"{m['mape']:.1f}", str(m["n"]), note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-v100", action="store_true")
    parser.add_argument("--json", help="also write all figures to this JSON file")
    args = parser.parse_args()
    console = Console()
    results: dict[str, object] = {}
    table = Table(title="latency models: predicted vs measured (held out)")
    for col in ("setting", "within ±10%", "Spearman", "median APE %", "n", "note"):
        table.add_column(col, justify="left" if col in ("setting", "note") else "right")

    if not args.skip_v100:
        if not DATA.exists():
            console.print(f"[yellow]{DATA} not found: V100 figures skipped[/]")
        else:
            v100 = get_profile("v100")
            for name, dtype in (("conv_data.out", "FP32"), ("conv_data.out.fp16", "FP16")):
                data = read_tinynas(DATA / name, batch=1)
                data = data.with_split(random_split(len(data), 0.05, seed=0))
                roof = evaluate(RooflineModel(v100), data.test)
                row(table, f"V100 {dtype} b1, roofline only", roof, "datasheet")
                fitted = evaluate(FittedModel(v100, data.train), data.test)
                row(table, f"V100 {dtype} b1, fitted on 5%", fitted,
                    f"{len(data.train)} fitted, {len(data.test)} held out")
                results[f"v100_{dtype}"] = {"roofline": roof, "fitted_5pct": fitted}

    console.print(table)

    # prediction throughput: a warm model predicting networks sampled from the spaces
    specs = [d.spec for d in sample_networks(SampleConfig(max_mflops=1e9, resolutions=None),
                                           2000, seed=7)]
    model = model_for(get_profile("x86-avx2"))
    t = time.perf_counter()
    model.predict_many(specs)
    cold = len(specs) / (time.perf_counter() - t)
    # distinct networks, block memo warm (a search: new networks of already-seen blocks);
    # best of 5, as timeit does, because other load on a shared machine only slows it down
    fresh = [d.spec for d in sample_networks(SampleConfig(max_mflops=1e9, resolutions=None),
                                           2000, seed=8)]
    model.predict_many(fresh)
    warm = single = 0.0
    for _ in range(5):
        t = time.perf_counter()
        model.predict_many(fresh)
        warm = max(warm, len(fresh) / (time.perf_counter() - t))
        t = time.perf_counter()
        for s in fresh:
            model.predict(s)
        single = max(single, len(fresh) / (time.perf_counter() - t))
    console.print(f"throughput (one core, best of 5): {warm:,.0f} networks/s batched, "
                  f"{single:,.0f} networks/s one at a time; {cold:,.0f} networks/s cold "
                  f"(first sight of {len(specs)} networks: block expansion + model)")
    results["throughput"] = {"warm_batched": warm, "single": single, "cold": cold}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
