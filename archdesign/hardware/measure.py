"""On-device profiling: time kernels and networks on this machine, fit, validate.

The timer is built for a shared, noisy machine: a fixed thread count, warm-up calls, an
inner loop long enough for the clock, repetitions *interleaved* across everything being
timed (so a burst of load from elsewhere hits all candidates alike rather than one),
medians, and a repeatability figure (interquartile range / median) for every
measurement. On CUDA it times with CUDA events after synchronizing.

:func:`measure_profile` samples networks from the search spaces, times their fused
kernels (adaptively: after a first random round, the kernels a bagged ensemble disagrees
on most), fits the model, fits a network-level calibration on calibration networks, then
times held-out networks end to end and stores predicted-vs-measured figures in the
profile. Every measurement is appended to a CSV as soon as it is taken; running again
with the same ``out`` resumes, and an interrupt keeps everything measured so far.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from archdesign.cost import cost
from archdesign.errors import InputError
from archdesign.hardware.kernels import block_kernels, fused_indices
from archdesign.hardware.models import FittedModel, RooflineModel, TableModel, model_for
from archdesign.hardware.profile import HardwareProfile, ModelConfig, get_profile
from archdesign.hardware.table import KernelTable, append_row, load_table
from archdesign.hardware.validate import evaluate, metrics
from archdesign.layers import Layer, blocks
from archdesign.spec import ArchSpec

logger = logging.getLogger(__name__)

DEVICES = ("cpu", "cuda")


# -- the timer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    median_ms: float
    spread: float  # interquartile range / median of the repetitions
    samples: int


@dataclass
class Timer:
    """Interleaved, warmed-up, median timing of several callables on one device."""

    device: str = "cpu"
    warmup: int = 2
    repeats: int = 7
    min_sample_s: float = 2e-4
    seed: int = 0

    def _sample(self, fn: Callable[[], object], inner: int) -> float:
        """Seconds per call, over ``inner`` back-to-back calls."""
        if self.device == "cuda":
            import torch

            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end)) * 1e-3 / inner
        begin = time.perf_counter_ns()
        for _ in range(inner):
            fn()
        return (time.perf_counter_ns() - begin) * 1e-9 / inner

    def time_many(self, fns: list[Callable[[], object]]) -> list[Timing]:
        rng = np.random.default_rng(self.seed)
        inner = []
        for fn in fns:
            for _ in range(self.warmup):
                fn()
            once = self._sample(fn, 1)
            inner.append(max(1, min(1000, math.ceil(self.min_sample_s / max(once, 1e-9)))))
        samples: list[list[float]] = [[] for _ in fns]
        for _ in range(self.repeats):
            for i in rng.permutation(len(fns)):
                samples[i].append(self._sample(fns[i], inner[i]))
        out = []
        for s in samples:
            arr = np.array(s) * 1e3
            median = float(np.median(arr))
            q25, q75 = np.percentile(arr, [25, 75])
            out.append(Timing(median, float((q75 - q25) / median), len(arr)))
        return out


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise InputError(f"--device: {device!r} is not one of {list(DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device: cuda was asked for but no CUDA device is available")


# -- runnable kernels and networks ------------------------------------------------------------


def kernel_callable(layers: tuple[Layer, ...], indices: list[int], batch: int,
                    device: str) -> Callable[[], object]:
    """Run the fused kernel ``layers[indices]`` alone, on inputs of the right shapes."""
    import torch

    from archdesign.build import layer_module

    modules = [layer_module(layers[i]).eval().to(device) for i in indices]
    inside = set(indices)
    external: dict[int, torch.Tensor] = {}
    for i in indices:
        for src in layers[i].inputs:
            if src in inside or src in external:
                continue
            if src < 0:
                first = layers[0]
                shape: tuple[int, ...] = (batch, first.c_in, first.h_in, first.w_in)
            elif layers[src].op == "flatten":
                shape = (batch, layers[src].c_out)
            else:
                p = layers[src]
                shape = (batch, p.c_out, p.h_out, p.w_out)
            external[src] = torch.randn(shape, device=device)
    plan = [(modules[k], layers[i].inputs, i) for k, i in enumerate(indices)]

    def run() -> object:
        values: dict[int, Any] = {}
        with torch.inference_mode():
            for module, inputs, i in plan:
                values[i] = module(*[values[s] if s in values else external[s]
                                     for s in inputs])
        return values[indices[-1]]

    return run


def network_callable(spec: ArchSpec, batch: int, device: str) -> Callable[[], object]:
    import torch

    from archdesign.build import build, check_fits

    check_fits(spec, batch, "--batch")
    model = build(spec).eval().to(device)
    x = torch.randn(batch, spec.in_channels, spec.resolution, spec.resolution, device=device)

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run


def measure_network(spec: ArchSpec, batch: int = 1, device: str = "cpu", threads: int = 1,
                    repeats: int = 7) -> Timing:
    """End-to-end latency of ``spec`` on this machine (median of interleaved runs)."""
    _check_device(device)
    with torch_threads(threads):
        return Timer(device, repeats=repeats).time_many([network_callable(spec, batch,
                                                                          device)])[0]


# -- sampling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleConfig:
    """Which networks to draw: spaces, a MAC cap, resolutions to draw from (None: as is)."""

    spaces: tuple[str, ...] = ("mobilenet", "resnet-basic", "resnet-bottleneck", "regnet",
                               "convnext")
    max_mflops: float = 1500.0
    resolutions: tuple[int, ...] | None = (96, 128, 160, 192, 224)


def sample_networks(config: SampleConfig, n: int, seed: int) -> list[tuple[str, ArchSpec]]:
    """``n`` networks, round-robin over the spaces, within the MAC cap."""
    from archdesign.spaces import get_space

    rng = np.random.default_rng(seed)
    spaces = [(name, get_space(name)) for name in config.spaces]
    out: list[tuple[str, ArchSpec]] = []
    misses = dict.fromkeys(config.spaces, 0)
    turn = 0
    while len(out) < n:
        if not spaces:
            raise InputError(f"spaces {list(config.spaces)}: no network under "
                             f"{config.max_mflops} MMACs in 300 draws; raise the cap")
        name, space = spaces[turn % len(spaces)]
        spec = space.sample_spec(rng)
        if config.resolutions:
            allowed = [r for r in config.resolutions if r >= spec.total_stride]
            spec = replace(spec, resolution=int(rng.choice(allowed)))
        if cost(spec).flops <= config.max_mflops * 1e6:
            out.append((name, spec))
            misses[name] = 0
            turn += 1
        else:
            misses[name] += 1
            if misses[name] >= 300:  # this space has (almost) nothing under the cap
                logger.warning("space %s: no network under %s MMACs in 300 draws; skipped",
                               name, config.max_mflops)
                spaces = [(k, v) for k, v in spaces if k != name]
    return out


def kernel_pool(specs: list[ArchSpec], profile: HardwareProfile,
                ) -> dict[tuple[float, ...], tuple[np.ndarray, tuple[Layer, ...], list[int]]]:
    """Distinct fused kernels of ``specs``, keyed by their row."""
    pool: dict[tuple[float, ...], tuple[np.ndarray, tuple[Layer, ...], list[int]]] = {}
    for spec in specs:
        for block in blocks(spec):
            bk = block_kernels(block.fn, block.args, profile.fusion)
            layers = block.layers
            for row, indices in zip(bk.rows, fused_indices(layers, profile.fusion),
                                    strict=True):
                pool.setdefault(tuple(row.tolist()), (row, layers, indices))
    return pool


# -- the profiling run -------------------------------------------------------------------------

NETWORK_HEADER = ("role", "space", "batch", "latency_ms", "spread", "spec")


@dataclass
class MeasureResult:
    profile: HardwareProfile
    kernels: int
    networks: int
    interrupted: bool


def _read_networks(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if r.get("spec")]


def _append_network(path: Path, role: str, space: str, batch: int, timing: Timing,
                    spec: ArchSpec) -> None:
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(NETWORK_HEADER)
        writer.writerow([role, space, batch, f"{timing.median_ms:.6g}", f"{timing.spread:.4g}",
                         json.dumps(spec.to_dict(), separators=(",", ":"))])


@contextmanager
def _interrupt_after() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, then raise it: scikit-learn can turn an
    interrupt inside a fit into a ValueError, and a row must not be cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _uncertainty(table: KernelTable, candidates: np.ndarray, profile: HardwareProfile,
                 batch: int, dtype: str, seed: int) -> np.ndarray:
    """Spread of a bagged ensemble's log predictions on ``candidates``."""
    rng = np.random.default_rng(seed)
    preds = []
    for b in range(4):
        pick = rng.integers(0, len(table), len(table))
        model = FittedModel(profile, table.select(pick),
                            {"max_iter": 150, "random_state": b})
        preds.append(np.log(model.predict_kernels(candidates, batch, dtype)))
    return np.std(np.array(preds), axis=0)


def _device_name(device: str) -> str:
    if device == "cuda":
        import torch

        return str(torch.cuda.get_device_name())
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return name


def measure_profile(out: str | Path, device: str = "cpu", threads: int = 1,
                    minutes: float = 5.0, base: str | None = None, batch: int = 1,
                    networks: int = 100, calibration_networks: int = 20,
                    sample: SampleConfig | None = None, kernel_fraction: float = 0.6,
                    round_size: int = 32, pool_networks: int = 300, seed: int = 0,
                    progress: bool = False,
                    timer: Timer | None = None) -> MeasureResult:
    """Build a profile of this machine at ``out`` (see the module docstring).

    ``minutes`` bounds the whole run: kernels get ``kernel_fraction`` of it, networks the
    rest (stopping early, with fewer networks, if the budget runs out). Kernels are drawn
    from ``pool_networks`` networks sampled independently of the held-out ones.
    """
    import torch

    _check_device(device)
    if minutes <= 0:
        raise InputError(f"--minutes: must be > 0, got {minutes}")
    if threads < 1:
        raise InputError(f"--threads: must be >= 1, got {threads}")
    out = Path(out)
    name = out.name.removesuffix(".yaml")
    base_profile = get_profile(base or ("x86-avx2" if device == "cpu" else "v100"))
    dtype = "float32"
    sample = sample or SampleConfig()
    timer = timer or Timer(device)
    kernels_csv = out.with_name(f"{name}.measurements.csv")
    networks_csv = out.with_name(f"{name}.networks.csv")
    profile = replace(
        base_profile, name=name, device=f"{_device_name(device)} ({device}, {threads} "
        f"thread{'s' if threads > 1 else ''}, torch {torch.__version__} eager)",
        kind="cpu" if device == "cpu" else "gpu", precision=dtype,
        source=f"measured by `archdesign profile measure` on {platform.node()}",
        derived={"peak_flops": f"from the {base_profile.name} datasheet profile (the roofline "
                 f"is only the fitted model's baseline)",
                 "model": "fitted on this machine's measurements"},
        model=None, validation={}, path=out.resolve())
    started = time.monotonic()

    bar: Any = nullcontext()
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(),
                       TextColumn("{task.completed:.0f}/{task.total:.0f}"),
                       TimeRemainingColumn(), transient=False)
    interrupted = False
    with torch_threads(threads), bar:
        # the held-out networks are drawn first, from their own seed, and never timed as
        # kernels; the kernel pool comes from independent draws of the same spaces
        held_out = sample_networks(sample, networks, seed + 1)
        calibration = sample_networks(sample, calibration_networks, seed + 2)
        pool_specs = [s for _, s in sample_networks(sample, pool_networks, seed + 3)]
        pool = kernel_pool(pool_specs, profile)
        # the budget counts from here (drawing networks is not measuring); the first round
        # of kernels is always timed so that a profile has something to fit
        elapsed = time.monotonic() - started
        deadline = started + max(minutes * 60, elapsed + 1)
        kernel_deadline = time.monotonic() + (deadline - time.monotonic()) * kernel_fraction
        table = load_table(kernels_csv) if kernels_csv.exists() else KernelTable.empty()
        measured = {tuple(r.tolist()) for r in table.rows}
        todo = [k for k in pool if k not in measured]
        rng = np.random.default_rng(seed)
        order = list(rng.permutation(len(todo)))
        task = bar.add_task("kernels", total=len(pool)) if progress else None
        if progress:
            bar.update(task, completed=len(measured))
        try:
            first = True
            while todo and (first or time.monotonic() < kernel_deadline):
                first = False
                if len(table) >= 2 * round_size and len(todo) > round_size:
                    candidates = np.array([pool[k][0] for k in todo])
                    with _interrupt_after():
                        spread = _uncertainty(table.select(table.split == "train"),
                                              candidates, profile, batch, dtype,
                                              seed + len(table))
                    explore = round_size // 4  # and a few at random, to keep looking
                    ranked = list(np.argsort(-spread))
                    picked = ranked[: round_size - explore]
                    rest = ranked[round_size - explore:]
                    picked += list(rng.choice(rest, min(explore, len(rest)), replace=False))
                else:
                    picked = order[:round_size]
                keys = [todo[i] for i in picked]
                fns = [kernel_callable(pool[k][1], pool[k][2], batch, device) for k in keys]
                timings = timer.time_many(fns)
                records = []
                with _interrupt_after():  # a round's rows are written whole
                    for k, t in zip(keys, timings, strict=True):
                        split = "test" if (len(measured) % 10) == 9 else "train"
                        append_row(kernels_csv, pool[k][0], batch, dtype, t.median_ms,
                                   t.spread, split)
                        measured.add(k)
                        records.append((pool[k][0], batch, dtype, t.median_ms, t.spread,
                                        split))
                table = KernelTable.concat([table, KernelTable.from_records(records)])
                chosen = set(keys)
                todo = [k for k in todo if k not in chosen]
                order = list(rng.permutation(len(todo)))
                if progress:
                    bar.update(task, completed=len(measured))
            done = {(r["role"], r["spec"]) for r in _read_networks(networks_csv)}
            jobs = [("calibration", sp, s) for sp, s in calibration] + \
                   [("test", sp, s) for sp, s in held_out]
            task2 = bar.add_task("networks", total=len(jobs)) if progress else None
            for count, (role, space, spec) in enumerate(jobs, start=1):
                text = json.dumps(spec.to_dict(), separators=(",", ":"))
                if (role, text) not in done:
                    if time.monotonic() > deadline:
                        logger.warning("time budget spent after %d of %d networks", count - 1,
                                       len(jobs))
                        break
                    t = timer.time_many([network_callable(spec, batch, device)])[0]
                    _append_network(networks_csv, role, space, batch, t, spec)
                if progress:
                    bar.update(task2, completed=count)
        except KeyboardInterrupt:
            interrupted = True
            logger.warning("interrupted: keeping the %d kernels measured so far", len(table))
    result_profile = finish_profile(profile, out, batch, dtype)
    return MeasureResult(result_profile, len(table),
                         len(_read_networks(networks_csv)), interrupted)


def finish_profile(profile: HardwareProfile, out: Path, batch: int = 1,
                   dtype: str = "float32") -> HardwareProfile:
    """Fit on the measurements next to ``out``, calibrate, validate, write the profile."""
    name = out.name.removesuffix(".yaml")
    kernels_csv = out.with_name(f"{name}.measurements.csv")
    networks_csv = out.with_name(f"{name}.networks.csv")
    profile = replace(profile, model=ModelConfig("fitted", kernels_csv.name), path=out.resolve())
    table = load_table(kernels_csv) if kernels_csv.exists() else KernelTable.empty()
    validation: dict[str, Any] = {
        "kernels_measured": len(table),
        "kernel_repeatability": _repeatability(table.spread),
    }
    if len(table.train) < 8:
        profile = replace(profile, model=None, validation=validation)
        profile.save(out)
        logger.warning("%s: only %d kernels measured; wrote a roofline-only profile", out,
                       len(table))
        return profile
    fitted = model_for(profile, "fitted")
    validation["kernels"] = {"fitted": evaluate(fitted, table.test),
                             "table": evaluate(TableModel(profile, table.train), table.test),
                             "roofline": evaluate(RooflineModel(profile), table.test)}
    rows = _read_networks(networks_csv)
    specs = [ArchSpec.from_dict(json.loads(r["spec"]), str(networks_csv)) for r in rows]
    measured = np.array([float(r["latency_ms"]) for r in rows])
    roles = np.array([r["role"] for r in rows])
    calibration: dict[str, float] = {}
    if rows:
        kernel_sum = fitted.predict_many(specs, batch, dtype)
        cal = roles == "calibration"
        if cal.sum() >= 3:
            # one robust factor, the median measured/predicted ratio: with a handful of
            # noisy calibration networks a least-squares fit of more terms overfits
            calibration = {"scale": float(np.median(measured[cal] / kernel_sum[cal]))}
        test = roles == "test"
        if test.any():
            figures: dict[str, Any] = {}
            for kind, model in (("fitted", fitted),
                                ("table", TableModel(profile, table.train)),
                                ("roofline", RooflineModel(profile))):
                raw = model.predict_many([s for s, t in zip(specs, test, strict=True) if t],
                                         batch, dtype)
                figures[kind] = metrics(raw, measured[test])
                if calibration and kind != "roofline":
                    scaled = calibration["scale"] * raw
                    figures[f"{kind}_calibrated"] = metrics(scaled, measured[test])
            spreads = np.array([float(r["spread"]) for r in rows])
            figures["repeatability"] = _repeatability(spreads[test])
            figures["spaces"] = sorted({r["space"] for r, t in zip(rows, test, strict=True)
                                        if t})
            figures["calibration_networks"] = int(cal.sum())
            validation["networks"] = figures
    profile = replace(profile, model=ModelConfig("fitted", kernels_csv.name, {}, calibration),
                      validation=validation)
    profile.save(out)
    return profile


def _repeatability(spread: np.ndarray) -> dict[str, float]:
    spread = spread[np.isfinite(spread)]
    if not len(spread):
        return {}
    return {"median_iqr_over_median": float(np.median(spread)),
            "p90_iqr_over_median": float(np.percentile(spread, 90))}
