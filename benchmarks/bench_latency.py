"""Latency-model benchmark: the figures of issue 4, in one run.

1. local CPU: a profile measured here (``measure_profile``, within ``--minutes``), then
   held-out random networks from several search spaces timed end to end;
2. V100 (TinyNAS TensorRT data, batch 1, FP32 and FP16): roofline-only Spearman, and a
   model fitted on 5% of the entries evaluated on the other 95%;
3. prediction throughput (networks/s, one core).

    python benchmarks/bench_latency.py            # full: about 8-10 minutes
    python benchmarks/bench_latency.py --quick    # a smaller run, about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from archdesign.hardware.importers import random_split, read_tinynas
from archdesign.hardware.measure import SampleConfig, measure_profile, sample_networks
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
    parser.add_argument("--quick", action="store_true", help="smaller, faster run")
    parser.add_argument("--minutes", type=float, help="local profiling budget")
    parser.add_argument("--networks", type=int, help="held-out networks")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-mflops", type=float, help="cap on sampled networks (MMACs)")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--skip-v100", action="store_true")
    parser.add_argument("--out", help="directory to keep the measured profile in")
    parser.add_argument("--json", help="also write all figures to this JSON file")
    args = parser.parse_args()
    minutes = args.minutes or (1.5 if args.quick else 8.0)
    networks = args.networks or (30 if args.quick else 100)
    max_mflops = args.max_mflops or (600.0 if args.quick else 1000.0)
    console = Console()
    results: dict[str, object] = {}
    table = Table(title="latency models: predicted vs measured (held out)")
    for col in ("setting", "within ±10%", "Spearman", "median APE %", "n", "note"):
        table.add_column(col, justify="left" if col in ("setting", "note") else "right")

    if not args.skip_local:
        out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="archdesign-"))
        out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        result = measure_profile(out_dir / "local-cpu.yaml", "cpu", args.threads, minutes,
                                 networks=networks, calibration_networks=max(5, networks // 5),
                                 sample=SampleConfig(max_mflops=max_mflops), progress=True)
        elapsed = time.perf_counter() - start
        v = result.profile.validation
        results["local"] = {"minutes": elapsed / 60, "validation": v,
                            "profile": str(result.profile.path)}
        nets = v.get("networks", {})
        note = (f"{len(nets.get('spaces', []))} spaces, ≤{max_mflops:g} MMACs, "
                f"{result.kernels} kernels, {elapsed / 60:.1f} min")
        for kind in ("fitted_calibrated", "fitted", "table_calibrated", "table", "roofline"):
            if kind in nets:
                row(table, f"local CPU networks, {kind}", nets[kind],
                    note if kind == "fitted_calibrated" else "")
        for kind, m in v.get("kernels", {}).items():
            row(table, f"local CPU kernels, {kind}", m)
        results["local_repeatability"] = {"kernels": v.get("kernel_repeatability"),
                                          "networks": nets.get("repeatability")}

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
    for key, rep in results.get("local_repeatability", {}).items():  # type: ignore[union-attr]
        console.print(f"local {key} repeatability (IQR/median): {rep}")

    # prediction throughput: a warm model predicting networks sampled from the spaces
    specs = [s for _, s in sample_networks(SampleConfig(max_mflops=1e9, resolutions=None),
                                           2000, seed=7)]
    model = model_for(get_profile("x86-avx2"))
    t = time.perf_counter()
    model.predict_many(specs)
    cold = len(specs) / (time.perf_counter() - t)
    # distinct networks, block memo warm (a search: new networks of already-seen blocks);
    # best of 5, as timeit does, because other load on a shared machine only slows it down
    fresh = [s for _, s in sample_networks(SampleConfig(max_mflops=1e9, resolutions=None),
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
