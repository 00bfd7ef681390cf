"""Evaluating candidates: analytic metrics in process or on Ray, measured latency in actors.

This module is where the search meets the rest of archdesign: the search space decodes
parameters to an :class:`~archdesign.spec.ArchSpec`, :mod:`archdesign.cost` counts it,
:mod:`archdesign.objectives` scores it and :mod:`archdesign.hardware` predicts (or
measures) its latency. Every evaluation is a pure function of an :class:`EvalConfig` and
the parameters, so the same candidates give the same figures in the driver, in any Ray
worker, and after a resume.

Analytic evaluations take microseconds, far less than a Ray task costs, so
:class:`RayEvaluator` sends them in chunks; a chunk whose worker dies is resubmitted
(and, as a last resort, evaluated in the driver), so no candidate is ever lost.
Measured latency runs in :class:`TimerActor` s, each holding one unit of the custom
resource :data:`TIMER_RESOURCE`, so that two timings never share a device.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from archdesign.cost import cost_many, dtype_bytes
from archdesign.errors import InputError
from archdesign.layers import number_runs
from archdesign.objectives.deepmad import groups_many
from archdesign.spaces import SearchSpace, SpaceError, Value
from archdesign.spec import ArchSpec

logger = logging.getLogger(__name__)

# The Ray resource a measured-latency actor holds; one unit per device that times.
TIMER_RESOURCE = "archdesign_timer"
# Seconds to wait for a --ray-address to accept a connection before calling it dead.
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """Everything an evaluation depends on, by name (cheap to send to a worker)."""

    space: str
    hardware: str
    batch: int = 1
    dtype: str | None = None  # None: the profile's precision
    latency_model: str | None = None  # None: the profile's own model
    objective: str = "deepmad"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The figures of one candidate; ``error`` says why a candidate is not a network."""

    number: int
    params: dict[str, Value]
    metrics: dict[str, float] = field(default_factory=dict)
    network: ArchSpec | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def spec(self) -> dict[str, Any] | None:
        """The network as plain data (what a trial records); made when asked for, by the
        driver, so that evaluating stays free of serialization."""
        return None if self.network is None else self.network.to_dict()


Candidate = tuple[int, dict[str, Value]]


class Evaluator(ABC):
    """Evaluates candidates for a search: in this process, on Ray, ...

    ``evaluate`` returns one :class:`Evaluation` per candidate, in order, each a pure
    function of the candidate's parameters and the evaluator's :class:`EvalConfig`.
    ``specs``, when given, are the candidates' networks as the driver already decoded them
    (an evaluator in the driver's process uses them instead of decoding again).
    """

    config: EvalConfig
    workers: int = 1

    @abstractmethod
    def evaluate(self, candidates: Sequence[Candidate],
                 specs: Sequence[ArchSpec] | None = None) -> list[Evaluation]:
        """The figures of each candidate."""

    @abstractmethod
    def close(self) -> None:
        """Release what the evaluator holds (workers, a Ray instance)."""

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a batch is evaluated (and back as it was
    after). A batch allocates tens of thousands of tuples, most of them kept in the block
    memos, and no reference cycles: left on, the collector makes dozens of passes per
    batch, and the full ones (over every memoized block) made one batch in three up to
    twice as slow in ``bench_search.py``; after the batch it passes once over what the
    batch left."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Analytic:
    """Analytic evaluation in this process: decode, count, score, predict latency."""

    def __init__(self, config: EvalConfig) -> None:
        from archdesign.hardware import get_profile, model_for
        from archdesign.objectives import effectiveness, get_objective
        from archdesign.spaces import get_space

        self.config = config
        self.space = get_space(config.space)
        self.profile = get_profile(config.hardware)
        self.latency_model = model_for(self.profile, config.latency_model)
        self.objective = get_objective(config.objective)
        self.effectiveness = effectiveness
        self.dtype = config.dtype or self.profile.precision
        dtype_bytes(self.dtype)
        if config.batch < 1:
            raise InputError(f"batch: must be >= 1, got {config.batch}")

    def metrics(self, specs: Sequence[ArchSpec]) -> list[dict[str, float]]:
        """Every metric of each spec: costs and latencies in one batched call each."""
        specs = list(specs)
        batch = self.config.batch
        # the networks' blocks numbered once, for the latency, the costs and DeepMAD
        runs = number_runs(specs)
        latencies = self.latency_model.predict_many(specs, batch, self.dtype, runs).tolist()
        costs = {k: v.tolist() for k, v in cost_many(specs, batch, self.dtype, runs).items()}
        groups_many(specs, runs)  # DeepMAD's groups, for the score and rho
        weight_bytes = dtype_bytes(self.dtype)
        score, rho = self.objective.score, self.effectiveness
        out = []
        for i, spec in enumerate(specs):
            params = costs["params"][i]
            peak = costs["peak_activation_bytes"][i]
            value, effectiveness = float(score(spec)), float(rho(spec))
            out.append({
                "score": value,
                "latency": float(latencies[i]),
                "flops": float(costs["flops"][i]),
                "params": float(params),
                "activations": float(costs["activations"][i]),
                "memory": float(peak + params * weight_bytes),
                "peak_activation_bytes": float(peak),
                "bytes_moved": float(costs["bytes_moved"][i]),
                "rho": effectiveness,
            })
        return out

    def decode(self, params: dict[str, Value]) -> ArchSpec:
        """The spec for ``params``, or :class:`SpaceError` saying why there is none."""
        if not self.space.feasible(params):
            raise SpaceError(f"{self.space.source}: parameters {params} are outside the "
                             f"space's feasible set")
        return self.space.decode(params)

    def evaluate(self, candidates: Sequence[Candidate],
                 specs: Sequence[ArchSpec] | None = None) -> list[Evaluation]:
        """``specs``: the candidates' networks, already decoded (all of them)."""
        decoded: list[ArchSpec | str] = []
        if specs is not None:
            decoded = list(specs)
        else:
            for _, params in candidates:
                try:
                    decoded.append(self.decode(params))
                except SpaceError as exc:
                    decoded.append(str(exc))
        networks = [d for d in decoded if isinstance(d, ArchSpec)]
        with _collector_paused():
            figures = iter(self.metrics(networks) if networks else [])
        out = []
        for (number, params), spec in zip(candidates, decoded, strict=True):
            if isinstance(spec, str):
                out.append(Evaluation(number, params, error=spec))
                continue
            metrics = next(figures)
            if not all(math.isfinite(v) for v in metrics.values()):
                out.append(Evaluation(number, params, network=spec,
                                      error=f"non-finite metrics {metrics}"))
                continue
            out.append(Evaluation(number, params, metrics, spec))
        return out


@lru_cache(maxsize=8)
def _evaluator(config: EvalConfig) -> _Analytic:
    # One evaluator per config and process: a Ray worker builds its latency model once and
    # keeps its per-block memo across the chunks it is sent.
    return _Analytic(config)


def evaluate_chunk(config: EvalConfig, candidates: list[Candidate]) -> list[Evaluation]:
    """Evaluate ``candidates`` in this process (what a Ray task runs)."""
    return _evaluator(config).evaluate(candidates)


class LocalEvaluator(Evaluator):
    """Evaluates in the driver process."""

    def __init__(self, config: EvalConfig) -> None:
        self.config = config
        self._evaluator = _evaluator(config)

    @property
    def space(self) -> SearchSpace:
        return self._evaluator.space

    def metrics(self, specs: Sequence[ArchSpec]) -> list[dict[str, float]]:
        return self._evaluator.metrics(specs)

    def decode(self, params: dict[str, Value]) -> ArchSpec:
        return self._evaluator.decode(params)

    def evaluate(self, candidates: Sequence[Candidate],
                 specs: Sequence[ArchSpec] | None = None) -> list[Evaluation]:
        return self._evaluator.evaluate(list(candidates), specs)

    def close(self) -> None:
        """Nothing to release: the driver's process is the evaluator."""


def _machine_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1


def check_ray_address(address: str) -> None:
    """An InputError, within :data:`CONNECT_TIMEOUT_S`, if nothing listens at ``address``
    (``host:port`` or ``ray://host:port``): Ray itself retries a dead address for about a
    minute before it gives up. ``auto`` is left to Ray, which fails at once when no
    cluster was started on this machine."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if address == "auto" or not sep:
        return
    if not port.isdigit():
        raise InputError(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT "
                         f"or auto")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise InputError(f"--ray-address {address}: no Ray cluster answers there ({exc}); "
                         f"start one with `ray start --head`, or leave out --ray-address "
                         f"to run on a Ray instance of this machine") from None


@contextmanager
def _ray_warnings_silenced() -> Iterator[None]:
    """Ray's start-up warnings off (e.g. 2.60's "Token authentication is enabled for this
    Ray cluster", printed on every local start): the user sees our lines, and Ray's
    errors."""
    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ray_logger.setLevel(level)


class _RaySession:
    """The Ray connection of one evaluator: a new local instance, or ``address``.

    A local instance lives in its own temporary directory (its session files and logs
    never land next to the user's files) and is watched by :mod:`archdesign._ray_reaper`,
    which ends its processes and removes that directory when the driver closes it or
    dies, even by SIGKILL. ``address="local"``: never attach to a cluster that happens to
    run on the machine.
    """

    def __init__(self, workers: int, address: str | None, timer_slots: int = 1) -> None:
        import ray

        self.started = False
        self._reaper: subprocess.Popen[bytes] | None = None
        if ray.is_initialized():
            return
        common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING,
                                  "configure_logging": False}
        if address:
            check_ray_address(address)
            try:
                with _ray_warnings_silenced():
                    ray.init(address=address, **common)
            except ConnectionError as exc:
                raise InputError(f"--ray-address {address}: {exc}") from None
        else:
            from archdesign._ray_reaper import MARK

            temp_dir = tempfile.mkdtemp(prefix="archdesign-ray-")
            self._reaper = subprocess.Popen(
                [sys.executable, "-m", "archdesign._ray_reaper", temp_dir],
                stdin=subprocess.PIPE, start_new_session=True)
            os.environ[MARK] = temp_dir  # inherited by every process Ray starts
            try:
                with _ray_warnings_silenced():
                    ray.init(address="local", num_cpus=min(workers, _machine_cpus()),
                             resources={TIMER_RESOURCE: timer_slots}, _temp_dir=temp_dir,
                             **common)
            except BaseException:
                self.close()
                raise
            finally:
                os.environ.pop(MARK, None)
        self.started = True

    def close(self) -> None:
        import ray

        if self.started and ray.is_initialized():
            ray.shutdown()
        self.started = False
        if self._reaper is not None:  # it sweeps what shutdown left and the directory
            assert self._reaper.stdin is not None
            self._reaper.stdin.close()
            self._reaper.wait()
            self._reaper = None


def _cap_workers(workers: int) -> int:
    """``workers``, at most the CPUs Ray reports (saying so when it caps)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    if workers > cpus:
        logger.warning("--workers %d: Ray reports %d CPUs; using %d workers", workers, cpus,
                       cpus)
        return cpus
    return workers


class RayEvaluator(Evaluator):
    """Evaluates chunks of candidates as Ray tasks; a dead worker's chunk is redone.

    ``evaluate_fn`` is what a task runs (``evaluate_chunk``; tests inject failures through
    it). A chunk is at least ``min_chunk`` candidates, unless that would leave a worker
    idle: analytic evaluations take microseconds and a task about a millisecond, but a
    short batch of forward passes (Zen-NAS) must still spread over every worker.
    """

    def __init__(self, config: EvalConfig, workers: int, address: str | None = None,
                 min_chunk: int = 16, attempts: int = 3,
                 evaluate_fn: Callable[[EvalConfig, list[Candidate]], list[Evaluation]]
                 = evaluate_chunk) -> None:
        import ray

        if workers < 1:
            raise InputError(f"--workers: must be >= 1, got {workers}")
        self.config = config
        self.min_chunk = min_chunk
        self.attempts = attempts
        self._evaluate_fn = evaluate_fn
        # Fail early, in the driver, on a bad space or profile.
        _evaluator(config)
        self._session = _RaySession(workers, address)
        self.workers = _cap_workers(workers)
        # max_retries: Ray itself resubmits a task whose worker process died.
        self._task = ray.remote(evaluate_fn).options(num_cpus=1, max_retries=2)
        self._config_ref = ray.put(config)

    def _chunks(self, candidates: list[Candidate]) -> list[list[Candidate]]:
        # chunks of at least min_chunk, but never fewer chunks than workers: a batch of
        # expensive candidates (a forward pass each) is short and must still spread
        n = max(1, min(self.workers * 2, math.ceil(len(candidates) / self.min_chunk)),
                min(self.workers, len(candidates)))
        size = math.ceil(len(candidates) / n)
        return [candidates[i:i + size] for i in range(0, len(candidates), size)]

    def evaluate(self, candidates: Sequence[Candidate],
                 specs: Sequence[ArchSpec] | None = None) -> list[Evaluation]:
        import ray
        from ray.exceptions import RayTaskError

        chunks = self._chunks(list(candidates))
        refs = [self._task.remote(self._config_ref, chunk) for chunk in chunks]
        results: list[Evaluation] = []
        for chunk, ref in zip(chunks, refs, strict=True):
            for attempt in range(1, self.attempts + 1):
                try:
                    results.extend(ray.get(ref))  # type: ignore[arg-type]
                    break
                except RayTaskError:
                    raise  # the evaluation itself raised: a bug, not a lost worker
                except ray.exceptions.RayError as exc:
                    logger.warning("a Ray worker was lost evaluating trials %d..%d (%s); "
                                   "attempt %d of %d", chunk[0][0], chunk[-1][0],
                                   type(exc).__name__, attempt, self.attempts)
                    if attempt == self.attempts:
                        logger.warning("evaluating trials %d..%d in the driver", chunk[0][0],
                                       chunk[-1][0])
                        results.extend(evaluate_chunk(self.config, chunk))
                    else:
                        ref = self._task.remote(self._config_ref, chunk)
        return results

    def close(self) -> None:
        self._session.close()


def make_evaluator(config: EvalConfig, workers: int = 1,
                   address: str | None = None) -> Evaluator:
    """In process for one worker and no cluster; otherwise on Ray."""
    if workers <= 1 and not address:
        return LocalEvaluator(config)
    return RayEvaluator(config, workers, address)


# -- measured latency --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeasureConfig:
    batch: int = 1
    device: str = "cpu"
    threads: int = 1
    repeats: int = 7


def measure_specs(specs: Sequence[ArchSpec], config: MeasureConfig) -> list[dict[str, float]]:
    """Measured end-to-end latency (median ms, spread) of each spec, one after another."""
    from archdesign.hardware.measure import measure_network

    out = []
    for spec in specs:
        timing = measure_network(spec, config.batch, config.device, config.threads,
                                 config.repeats)
        out.append({"latency_ms": timing.median_ms, "spread": timing.spread})
    return out


def measure_on_ray(specs: Sequence[ArchSpec], config: MeasureConfig,
                   actors: int = 1) -> list[dict[str, float]]:
    """Measured latency in actors that each hold one :data:`TIMER_RESOURCE` unit.

    Ray must be initialized. Locally there is one unit, so timings run one at a time; on
    a cluster each node that declares the resource times its share.
    """
    import ray

    actor_cls = ray.remote(_TimerActor).options(num_cpus=config.threads,
                                                resources={TIMER_RESOURCE: 1},
                                                max_restarts=1, max_task_retries=1)
    timers = [actor_cls.remote(config) for _ in range(max(1, actors))]
    try:
        refs = [timers[i % len(timers)].measure.remote(spec.to_dict())  # type: ignore[attr-defined]
                for i, spec in enumerate(specs)]
        return list(ray.get(refs))
    finally:
        for timer in timers:
            ray.kill(timer)  # type: ignore[arg-type]


class _TimerActor:
    def __init__(self, config: MeasureConfig) -> None:
        self.config = config

    def measure(self, spec: dict[str, Any]) -> dict[str, float]:
        return measure_specs([ArchSpec.from_dict(spec)], self.config)[0]
