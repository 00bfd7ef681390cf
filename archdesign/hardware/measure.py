"""On-device profiling: time whole networks on this machine, calibrate, validate.

The timer is built for a shared, noisy machine: a fixed thread count, warm-up calls, an
inner loop long enough for the clock, repetitions *interleaved* round-robin across the
networks being timed (so a burst of load from elsewhere hits all of them alike rather than
one), medians, and two independent passes per network whose agreement is the
repeatability. A single-thread CPU run also reads the thread's CPU time
(``time.thread_time_ns``: ONNX Runtime with one intra-op thread and PyTorch with one thread
compute on the calling thread), which time stolen by other processes does not inflate;
it is the latency such runs record, wall time beside it. On CUDA it times with CUDA events.

:func:`measure_profile` draws networks from the search spaces (as space points), times
them in the profile's runtime (ONNX Runtime by default on CPU), appends each chunk of rows
to a measurement file (the format of :mod:`archdesign.measurements`) as soon as it is
timed, calibrates the base profile on the calibration networks through ``profile
calibrate``'s code (:func:`archdesign.hardware.calibrate.calibrate_measurements`) and
validates on the held-out networks. Running again with the same ``out`` skips the rows
already there; an interrupt keeps every row written.
"""

from __future__ import annotations

import csv
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archdesign.cost import cost
from archdesign.errors import InputError
from archdesign.hardware.profile import HardwareProfile, get_profile
from archdesign.hardware.runtime import (
    DEFAULT_RUNTIME,
    check_runtime,
    network_callable,
    this_machine,
)
from archdesign.spec import ArchSpec

if TYPE_CHECKING:
    from archdesign.spaces import SearchSpace

logger = logging.getLogger(__name__)

DEVICES = ("cpu", "cuda")
CLOCKS = ("cpu", "wall")
#: Two passes agree when their medians are within this fraction of each other.
REPEAT_TOLERANCE = 0.05


# -- the timer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    median_ms: float  # on the timer's clock: the latency recorded
    spread: float  # interquartile range / median of the repetitions
    samples: int
    wall_ms: float  # median wall time
    cpu_ms: float | None  # median thread CPU time (the cpu clock only)
    passes_ms: tuple[float, float]  # median of each independent pass, timer's clock
    wall_passes_ms: tuple[float, float]  # the same on the wall clock

    @property
    def pass_ratio(self) -> float:
        return self.passes_ms[1] / self.passes_ms[0]

    @property
    def repeatable(self) -> bool:
        """Whether the two passes agree within ±5%."""
        return abs(self.pass_ratio - 1) <= REPEAT_TOLERANCE + 1e-12


@dataclass
class Timer:
    """Interleaved, warmed-up, two-pass median timing of several callables on one device.

    ``clock``: ``cpu`` reads the calling thread's CPU time (only meaningful when the work
    runs on that thread: one-thread CPU runs), ``wall`` the wall clock. ``repeats``
    samples per pass, two passes.
    """

    device: str = "cpu"
    clock: str = "wall"
    warmup: int = 2
    repeats: int = 5
    min_sample_s: float = 2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise InputError(f"--clock: {self.clock!r} is not one of {list(CLOCKS)}")
        if self.clock == "cpu" and self.device != "cpu":
            raise InputError("--clock cpu: CPU time only measures CPU runs; use --clock wall")
        if self.repeats < 1:
            raise InputError(f"--repeats: must be >= 1, got {self.repeats}")

    def _sample(self, fn: Callable[[], object], inner: int) -> tuple[float, float]:
        """Wall and thread CPU seconds per call, over ``inner`` back-to-back calls."""
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
            seconds = float(start.elapsed_time(end)) * 1e-3 / inner
            return seconds, math.nan
        cpu = time.thread_time_ns()
        wall = time.perf_counter_ns()
        for _ in range(inner):
            fn()
        wall = time.perf_counter_ns() - wall
        cpu = time.thread_time_ns() - cpu
        return wall * 1e-9 / inner, cpu * 1e-9 / inner

    def time_many(self, fns: list[Callable[[], object]]) -> list[Timing]:
        rng = np.random.default_rng(self.seed)
        inner = []
        for fn in fns:
            for _ in range(self.warmup):
                fn()
            once = self._sample(fn, 1)[0]
            inner.append(max(1, min(1000, math.ceil(self.min_sample_s / max(once, 1e-9)))))
        # samples[i][p]: (wall, cpu) pairs of network i in pass p
        samples: list[list[list[tuple[float, float]]]] = [[[], []] for _ in fns]
        for p in range(2):
            for _ in range(self.repeats):
                for i in rng.permutation(len(fns)):
                    samples[i][p].append(self._sample(fns[i], inner[i]))
        out = []
        column = 1 if self.clock == "cpu" else 0
        for per_pass in samples:
            both = np.array(per_pass[0] + per_pass[1]) * 1e3
            chosen = both[:, column]
            median = float(np.median(chosen))
            q25, q75 = np.percentile(chosen, [25, 75])
            passes = [np.median(np.array(s) * 1e3, axis=0) for s in per_pass]
            out.append(Timing(median, float((q75 - q25) / median), len(chosen),
                              float(np.median(both[:, 0])),
                              median if self.clock == "cpu" else None,
                              (float(passes[0][column]), float(passes[1][column])),
                              (float(passes[0][0]), float(passes[1][0]))))
        return out


def default_clock(device: str, threads: int) -> str:
    """Thread CPU time for one-thread CPU runs, else wall time."""
    return "cpu" if device == "cpu" and threads == 1 else "wall"


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise InputError(f"--device: {device!r} is not one of {list(DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device: cuda was asked for but no CUDA device is available")


def measure_network(spec: ArchSpec, batch: int = 1, device: str = "cpu", threads: int = 1,
                    repeats: int = 5, runtime: str | None = None) -> Timing:
    """End-to-end latency of ``spec`` on this machine in ``runtime`` (ONNX Runtime on CPU
    by default): the median of two interleaved passes, on the CPU clock for one thread."""
    check_device(device)
    runtime = runtime or DEFAULT_RUNTIME[device]
    timer = Timer(device, default_clock(device, threads), repeats=repeats)
    with torch_threads(threads):
        return timer.time_many([network_callable(spec, batch, runtime, device, threads)])[0]


# -- sampling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleConfig:
    """Which networks to draw: spaces, a MAC cap, resolutions to draw from (None: as is)."""

    spaces: tuple[str, ...] = ("mobilenet", "resnet-basic", "resnet-bottleneck", "regnet",
                               "convnext")
    max_mflops: float = 1500.0
    resolutions: tuple[int, ...] | None = (96, 128, 160, 192, 224)


@dataclass(frozen=True)
class Drawn:
    """A network drawn from a space: the space, its point, the resolution, the spec."""

    space: str
    point: dict[str, Any]
    spec: ArchSpec


def _allows(space: SearchSpace, resolution: int) -> bool:
    """Whether ``space`` has no resolution parameter or allows ``resolution``."""
    if all(p.name != "resolution" for p in space.parameters):
        return True
    try:
        space.parameter("resolution").check(resolution, space.source)
    except InputError:
        return False
    return True


def sample_networks(config: SampleConfig, n: int, seed: int) -> list[Drawn]:
    """``n`` networks, round-robin over the spaces, within the MAC cap."""
    from archdesign.spaces import get_space

    rng = np.random.default_rng(seed)
    spaces = [(name, get_space(name)) for name in config.spaces]
    out: list[Drawn] = []
    misses = dict.fromkeys(config.spaces, 0)
    turn = 0
    while len(out) < n:
        if not spaces:
            raise InputError(f"spaces {list(config.spaces)}: no network under "
                             f"{config.max_mflops} MMACs in 300 draws; raise the cap")
        name, space = spaces[turn % len(spaces)]
        point = space.sample(rng)
        spec = space.decode(point)
        if config.resolutions:
            allowed = [r for r in config.resolutions
                       if r >= spec.total_stride and _allows(space, r)]
            if allowed:
                spec = replace(spec, resolution=int(rng.choice(allowed)))
        # the resolution goes in its own column (which also sets a space's parameter)
        point = {k: v for k, v in point.items() if k != "resolution"}
        if cost(spec).flops <= config.max_mflops * 1e6:
            out.append(Drawn(name, point, spec))
            misses[name] = 0
            turn += 1
        else:
            misses[name] += 1
            if misses[name] >= 300:  # this space has (almost) nothing under the cap
                logger.warning("space %s: no network under %s MMACs in 300 draws; skipped",
                               name, config.max_mflops)
                spaces = [(k, v) for k, v in spaces if k != name]
    return out


# -- the measurement file ------------------------------------------------------------------

#: Columns before the space parameters and after them; ``latency_ms`` is on the run's clock.
LEAD_COLUMNS = ("role", "space")
TAIL_COLUMNS = ("resolution", "batch", "latency_ms", "wall_ms", "cpu_ms", "pass1_ms",
                "pass2_ms", "wall_pass1_ms", "wall_pass2_ms", "spread", "clock", "runtime",
                "threads")


def _cell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _key(role: str, space: str, point: dict[str, Any], resolution: Any, batch: Any,
         ) -> tuple[str, ...]:
    return (role, space, *(f"{k}={point[k]}" for k in sorted(point)), str(resolution),
            str(batch))


def _header(spaces: tuple[str, ...]) -> list[str]:
    from archdesign.spaces import get_space

    names: list[str] = []
    for space in spaces:
        names += [p.name for p in get_space(space).parameters
                  if p.name not in names and p.name != "resolution"]
    return [*LEAD_COLUMNS, *names, *TAIL_COLUMNS]


def _read_rows(path: Path) -> tuple[list[str], dict[int, dict[str, str]]]:
    """The header and the complete rows by line (numbered as the measurement reader does:
    the header is line 1); a row cut short by a killed run is left out (and timed again:
    the next append drops it)."""
    if not path.exists() or path.stat().st_size == 0:
        return [], {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), {
            line: r for line, r in enumerate(reader, start=2) if r.get(TAIL_COLUMNS[-1])}


def _append_rows(path: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` (the header first in a new file), flushed at once."""
    size = path.stat().st_size if path.exists() else 0
    if size:  # drop a row a killed run left without its line end: it is timed again
        with path.open("r+b") as raw:
            text = raw.read()
            if not text.endswith(b"\n"):
                size = text.rfind(b"\n") + 1
                raw.truncate(size)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, header)
        if not size:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()


def _row(role: str, drawn: Drawn, t: Timing, batch: int, clock: str, runtime: str,
         threads: int) -> dict[str, Any]:
    """One measurement-file row: the network as a space point, its timing."""
    return {"role": role, "space": drawn.space, **{k: _cell(v) for k, v in drawn.point.items()},
            "resolution": drawn.spec.resolution, "batch": batch,
            "latency_ms": f"{t.median_ms:.6g}", "wall_ms": f"{t.wall_ms:.6g}",
            "cpu_ms": "" if t.cpu_ms is None else f"{t.cpu_ms:.6g}",
            "pass1_ms": f"{t.passes_ms[0]:.6g}", "pass2_ms": f"{t.passes_ms[1]:.6g}",
            "wall_pass1_ms": f"{t.wall_passes_ms[0]:.6g}",
            "wall_pass2_ms": f"{t.wall_passes_ms[1]:.6g}",
            "spread": f"{t.spread:.4g}", "clock": clock, "runtime": runtime,
            "threads": threads}


@contextmanager
def _interrupt_after() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done, then raise it: a row must not be cut in half
    (and scikit-learn / scipy can turn an interrupt inside a fit into another error)."""
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


# -- the profiling run -------------------------------------------------------------------------


@dataclass
class MeasureResult:
    profile: HardwareProfile | None  # None when too few calibration networks were timed
    measurements: Path
    timed: int  # networks timed by this run
    networks: int  # rows in the measurement file
    repeatability: dict[str, Any]
    interrupted: bool
    budget_spent: bool  # the time budget stopped the run before every network was timed


def repeatability(ratios: np.ndarray) -> dict[str, Any]:
    """The fraction of networks whose two passes agree within ±5%, and the spread."""
    ratios = ratios[np.isfinite(ratios)]
    if not len(ratios):
        return {"within_5pct": float("nan"), "n": 0}
    dev = np.abs(ratios - 1)
    return {"within_5pct": float(np.mean(dev <= REPEAT_TOLERANCE + 1e-12)),
            "median_pass_difference": float(np.median(dev)),
            "p90_pass_difference": float(np.percentile(dev, 90)), "n": len(ratios)}


def measure_profile(out: str | Path, device: str = "cpu", threads: int = 1,
                    runtime: str | None = None, base: str | None = None, batch: int = 1,
                    calibration_networks: int = 20, networks: int = 40,
                    sample: SampleConfig | None = None, seed: int = 0,
                    minutes: float | None = None, chunk: int = 8,
                    timer: Timer | None = None, progress: bool = False) -> MeasureResult:
    """Measure this machine into the profile ``out`` (see the module docstring).

    ``calibration_networks`` are fitted on, ``networks`` held out; the measurement file is
    ``NAME.measurements.csv`` beside ``out``. ``minutes`` (None: no limit) stops timing
    between chunks once spent; the profile is then calibrated on what was timed.
    """
    from archdesign.hardware.calibrate import MIN_NETWORKS, calibrate_measurements
    from archdesign.hardware.validate import validate_networks
    from archdesign.measurements import read_measurements

    check_device(device)
    runtime = runtime or DEFAULT_RUNTIME[device]
    check_runtime(runtime, device)
    if threads < 1:
        raise InputError(f"--threads: must be >= 1, got {threads}")
    if minutes is not None and minutes <= 0:
        raise InputError(f"--minutes: must be > 0, got {minutes}")
    if calibration_networks < MIN_NETWORKS:
        raise InputError(f"--calibration: at least {MIN_NETWORKS} networks, got "
                         f"{calibration_networks}")
    out = Path(out)
    name = out.name.removesuffix(".yaml")
    sample = sample or SampleConfig()
    timer = timer or Timer(device, default_clock(device, threads), seed=seed)
    if timer.device != device:
        raise InputError(f"the timer times {timer.device}, the run {device}")
    if timer.clock == "cpu" and threads > 1:
        raise InputError(f"--clock cpu: the calling thread's CPU time misses the other "
                         f"{threads - 1} threads' work; use --clock wall with --threads "
                         f"{threads}")
    csv_path = out.with_name(f"{name}.measurements.csv")
    header = _header(sample.spaces)
    existing_header, existing = _read_rows(csv_path)
    if existing_header and existing_header != header:
        raise InputError(f"{csv_path}: its columns {existing_header} are not this run's "
                         f"(other --spaces?); resume with the same options or choose another "
                         f"--out")
    for line, row in existing.items():
        if (row["runtime"], row["threads"], row["clock"]) != (runtime, str(threads),
                                                               timer.clock):
            raise InputError(f"{csv_path}: line {line} was timed in "
                             f"{row['runtime']} on {row['threads']} thread(s), clock "
                             f"{row['clock']}; this run is {runtime}, {threads}, "
                             f"{timer.clock}: choose another --out")

    jobs = [("calibration", d) for d in sample_networks(sample, calibration_networks,
                                                         seed + 2)]
    jobs += [("test", d) for d in sample_networks(sample, networks, seed + 1)]
    done = {_key(r["role"], r["space"], {k: r[k] for k in header[2:-len(TAIL_COLUMNS)]
                                         if r.get(k)}, r["resolution"], r["batch"])
            for r in existing.values()}
    todo = [(role, d) for role, d in jobs
            if _key(role, d.space, {k: _cell(v) for k, v in d.point.items()},
                    d.spec.resolution, batch) not in done]
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    bar: Any = nullcontext()
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(),
                       TextColumn("{task.completed:.0f}/{task.total:.0f}"),
                       TimeRemainingColumn(), transient=False)
    interrupted = budget_spent = False
    timed = 0
    with torch_threads(threads), bar:
        task = bar.add_task("networks", total=len(jobs)) if progress else None
        if progress:
            bar.update(task, completed=len(jobs) - len(todo))
        try:
            for start in range(0, len(todo), chunk):
                if deadline is not None and time.monotonic() > deadline:
                    budget_spent = True
                    logger.warning("time budget of %s min spent: %d of %d networks left "
                                   "untimed (run again to continue)", minutes,
                                   len(todo) - start, len(jobs))
                    break
                part = todo[start:start + chunk]
                fns = [network_callable(d.spec, batch, runtime, device, threads)
                       for _, d in part]
                timings = timer.time_many(fns)
                chunk_rows = [_row(role, d, t, batch, timer.clock, runtime, threads)
                              for (role, d), t in zip(part, timings, strict=True)]
                with _interrupt_after():  # a chunk's rows are written whole
                    _append_rows(csv_path, header, chunk_rows)
                timed += len(chunk_rows)
                if progress:
                    bar.update(task, completed=len(jobs) - len(todo) + start + len(part))
        except KeyboardInterrupt:
            interrupted = True
            logger.warning("interrupted: keeping the networks timed so far in %s", csv_path)

    _, rows = _read_rows(csv_path)
    ratios = {line: float(r["pass2_ms"]) / float(r["pass1_ms"]) for line, r in rows.items()}
    role_of = {line: r["role"] for line, r in rows.items()}
    result = MeasureResult(None, csv_path, timed, len(rows),
                           repeatability(np.array(list(ratios.values()))), interrupted,
                           budget_spent)
    calibrated = list(role_of.values()).count("calibration")
    if calibrated < MIN_NETWORKS:
        logger.warning("%s: %d calibration networks timed, %d needed: no profile written "
                       "(run again to continue)", csv_path, calibrated, MIN_NETWORKS)
        return result
    data = read_measurements(csv_path, batch=batch)
    calibration = replace(data, rows=tuple(m for m in data.rows
                                           if role_of.get(m.line) == "calibration"))
    base_profile = get_profile(base or ("x86-avx2" if device == "cpu" else "v100"))
    machine = {**this_machine(device), "threads": str(threads)}
    label = f"{runtime}, {threads} thread{'s' if threads > 1 else ''}, {timer.clock} clock"
    base_profile = replace(
        base_profile, device=f"{machine.get('gpu', machine['cpu'])} ({label})",
        kind="cpu" if device == "cpu" else "gpu", precision="float32", runtime=runtime,
        machine=machine, source=f"measured by `archdesign profile measure` on this machine; "
        f"peaks of the {base_profile.name} datasheet")
    with _interrupt_after():
        profile, _ = calibrate_measurements(base_profile, calibration, out, label)
        test = replace(data, rows=tuple(m for m in data.rows if role_of.get(m.line) == "test"))
        validation = dict(profile.validation)
        validation["repeatability"] = result.repeatability
        validation["timer"] = {"clock": timer.clock, "warmup": timer.warmup,
                               "repeats_per_pass": timer.repeats, "passes": 2,
                               "min_sample_s": timer.min_sample_s}
        if test.rows:
            steady = {line for line, ratio in ratios.items()
                      if abs(ratio - 1) <= REPEAT_TOLERANCE + 1e-12}
            report = validate_networks(profile, test)
            held_out = {k: report[k] for k in ("within_10pct", "within_20pct", "spearman",
                                               "kendall", "mape", "mean_ape", "n")}
            repeatable = replace(test, rows=tuple(m for m in test.rows if m.line in steady))
            if repeatable.rows:
                report = validate_networks(profile, repeatable)
                held_out["repeatable"] = {k: report[k] for k in ("within_10pct", "spearman",
                                                                 "mape", "n")}
            validation["held_out"] = held_out
        profile = replace(profile, validation=validation)
        profile.save(out)
    result.profile = profile
    return result
